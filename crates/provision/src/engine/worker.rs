//! Worker identity: which process holds a lease, and taking back the items of one that died.

use super::*;

/// `host:pid:random`: the host and process let a later run on the same host see that a lease
/// holder died (a killed CLI) and take its items back at once instead of after the lease.
pub fn local_worker_id() -> String {
    format!(
        "{}:{}:{}",
        host_name(),
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}

pub(super) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// Whether a lease holder is a process of this host that no longer exists. Unknown formats and
/// other hosts are never judged dead: their leases simply expire.
pub fn is_dead_local_worker(worker: &str) -> bool {
    let mut parts = worker.split(':');
    let (Some(host), Some(pid), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    host == host_name()
        && pid != std::process::id()
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// How long the items of a dead lease holder wait, at least, before anyone claims them again.
/// The holder may have been answered a 429 or a 503 that it never recorded: the answer was on
/// the wire, or read but not yet committed, when the process died, and Graph counts a request
/// sent again before that answer's `Retry-After` as an early retry. The store cannot tell an
/// item in flight from one claimed but not started, so all of them wait: a few dozen items at
/// most (the concurrency and one claim batch), once per crash, while the run goes on with others.
/// The outbound writes' queue applies the same rule to its dead holders.
pub const DEAD_HOLDER_HOLD: Duration = Duration::from_secs(5);

impl<R: RelyingParty, S: CredentialStore> Engine<R, S> {
    /// Takes back the items of this host's lease holders that died. They wait out
    /// [`DEAD_HOLDER_HOLD`], or the longest `Retry-After` the job is still honouring when that
    /// is longer (a 429 in flight at the crash is likely to say what the ones before it said).
    pub(super) async fn release_dead_local_leases(&self, job_id: JobId) -> Result<(), EngineError> {
        let mut hold_ms = None;
        for worker in self.inner.store.lease_holders(job_id).await? {
            if is_dead_local_worker(&worker) {
                let hold_ms = match hold_ms {
                    Some(ms) => ms,
                    None => {
                        let longest = self.inner.store.longest_deferral_in(job_id).await?;
                        let floor = i64::try_from(DEAD_HOLDER_HOLD.as_millis()).unwrap_or(i64::MAX);
                        *hold_ms.insert(longest.max(floor))
                    }
                };
                let released = self
                    .inner
                    .store
                    .release_leases_of(job_id, &worker, hold_ms)
                    .await?;
                tracing::info!(%worker, released, hold_ms, "took back the items of a worker that died");
            }
        }
        Ok(())
    }
}
