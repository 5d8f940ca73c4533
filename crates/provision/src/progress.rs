//! What a run reports while it goes: counters for a progress bar, and one report per item.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use behalf_domain::{ItemState, UserId};

/// The outcome of one item, for `--verbose`, `--json` and `failures.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemReport {
    pub user_id: UserId,
    pub upn: String,
    pub state: ItemState,
    pub reason: Option<String>,
    pub error_code: Option<String>,
    pub request_id: Option<String>,
}

/// Called for each item that reaches a final state.
type ItemCallback = Box<dyn Fn(&ItemReport) + Send + Sync>;

/// Counters shared by the workers and whoever draws progress; an optional per-item callback.
#[derive(Default)]
pub struct Progress {
    registered: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
    on_item: Option<ItemCallback>,
    reports: Mutex<Vec<ItemReport>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("snapshot", &self.snapshot())
            .finish_non_exhaustive()
    }
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgressSnapshot {
    pub registered: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl ProgressSnapshot {
    pub fn done(&self) -> u64 {
        self.registered + self.failed + self.skipped
    }
}

impl Progress {
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls `callback` for every item that reaches a final state (from worker tasks).
    pub fn with_callback(callback: impl Fn(&ItemReport) + Send + Sync + 'static) -> Self {
        Progress {
            on_item: Some(Box::new(callback)),
            ..Self::default()
        }
    }

    pub(crate) fn record(&self, report: ItemReport) {
        let counter = match report.state {
            ItemState::Registered => &self.registered,
            ItemState::Failed => &self.failed,
            ItemState::Skipped => &self.skipped,
            ItemState::Pending
            | ItemState::OptionsFetched
            | ItemState::CredentialCreated
            | ItemState::WaitingForUser => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(callback) = &self.on_item {
            callback(&report);
        }
        if let Ok(mut reports) = self.reports.lock() {
            reports.push(report);
        }
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            registered: self.registered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
        }
    }

    /// Every item report of this run, in the order they finished.
    pub fn reports(&self) -> Vec<ItemReport> {
        self.reports.lock().map(|r| r.clone()).unwrap_or_default()
    }
}
