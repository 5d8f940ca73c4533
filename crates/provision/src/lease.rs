//! Keeping a lease while the leased work runs.

use std::time::Duration;

/// Runs `work` and calls `renew` every third of `lease` until it completes, so that work taking
/// longer than a lease (a long Retry-After, a big import) is not taken over by another worker.
/// `renew` reports its own failures: a lease that could not be renewed simply expires.
pub async fn while_renewing<T, R>(
    work: impl Future<Output = T>,
    lease: Duration,
    mut renew: impl FnMut() -> R,
) -> T
where
    R: Future<Output = ()>,
{
    let mut every = tokio::time::interval(lease / 3);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = every.tick() => renew().await,
        }
    }
}
