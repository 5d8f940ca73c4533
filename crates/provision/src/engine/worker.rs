//! Worker identity: which process holds a lease, and taking back the items of one that died.

use super::*;

/// `host:pid:random`: the host and process let a later run on the same host see that a lease
/// holder died (a killed CLI) and take its items back at once instead of after the lease.
pub(super) fn local_worker_id() -> String {
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
pub(super) fn is_dead_local_worker(worker: &str) -> bool {
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

impl<R: RelyingParty, S: CredentialStore> Engine<R, S> {
    pub(super) async fn release_dead_local_leases(&self, job_id: JobId) -> Result<(), EngineError> {
        for worker in self.inner.store.lease_holders(job_id).await? {
            if is_dead_local_worker(&worker) {
                let released = self.inner.store.release_leases_of(job_id, &worker).await?;
                tracing::info!(%worker, released, "took back the items of a worker that died");
            }
        }
        Ok(())
    }
}
