//! Kinds of calls, and which budget each draws on, learnt from the answers.
//!
//! Graph's write budget counts writes, and Graph documents writes as the methods that change
//! state (POST, PUT, PATCH, DELETE). A GET may draw on it too: `creationOptions` issues a
//! challenge, and Microsoft does not document which bucket that call draws on. So for GETs the
//! pacer does not assume: it starts from "reads" and learns from what the answers say.
//! `x-ms-throttle-limit-percentage` tells the level of the bucket the call drew on; when the
//! write bucket is known to be above 80 % (the last write said so), a GET of a kind that draws
//! on it answers with about that level, and one that does not answers with the level of the
//! resource units (lower, or no header). A 429 naming the write limit on a GET settles it.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Method;
use tokio::time::Instant;

/// A kind of call: its method and its path with the ids and function arguments left out
/// (`GET beta/users/{}/authentication/fido2Methods/creationOptions`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CallKind {
    key: String,
    /// POST, PUT, PATCH or DELETE: a write as Graph documents it.
    changes: bool,
}

impl CallKind {
    pub(crate) fn of(method: &Method, url: &str) -> CallKind {
        let path = url
            .split_once("://")
            .map_or(url, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
        let path = path.split(['?', '#']).next().unwrap_or("");
        let mut key = method.as_str().to_string();
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            // A function's arguments are values, not part of the kind.
            let name = segment.split('(').next().unwrap_or(segment);
            key.push(' ');
            key.push_str(if is_id(name) { "{}" } else { name });
        }
        let changes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        CallKind { key, changes }
    }
}

/// An id or a UPN in a path: anything with `@` or a percent-escape, or a long token with digits.
fn is_id(segment: &str) -> bool {
    segment.contains('@')
        || segment.contains('%')
        || (segment.len() >= 16 && segment.bytes().any(|b| b.is_ascii_digit()))
        || segment.bytes().all(|b| b.is_ascii_digit())
}

/// What the pacer believes about one kind.
#[derive(Debug, Clone, Copy)]
pub(super) struct KindState {
    /// Whether its calls draw on the write budget.
    pub(super) writes: bool,
    /// Evidence for (> 0) or against (< 0) drawing on the write budget, in [-1, 1].
    score: f64,
    /// Resource units a call costs (`x-ms-resource-unit`, averaged; 1 until seen).
    pub(super) units: f64,
}

/// One vote's weight: three agreeing answers overturn the prior.
const VOTE: f64 = 0.25;
/// How recent the write bucket's level must be to compare another answer with it.
const LEVEL_FRESH: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
pub(super) struct Kinds {
    kinds: HashMap<CallKind, KindState>,
    /// The write bucket's level as the last write said it, and when (0 when it had no header).
    write_level: Option<(Instant, f64)>,
}

impl Kinds {
    pub(super) fn get(&mut self, kind: &CallKind) -> KindState {
        *self.kinds.entry(kind.clone()).or_insert(KindState {
            writes: kind.changes,
            score: if kind.changes { 1.0 } else { -2.0 * VOTE },
            units: 1.0,
        })
    }

    fn entry(&mut self, kind: &CallKind) -> &mut KindState {
        self.get(kind);
        self.kinds.get_mut(kind).expect("inserted above")
    }

    /// Kinds now believed to draw on the write budget.
    pub(super) fn on_writes(&self) -> u64 {
        self.kinds.values().filter(|k| k.writes).count() as u64
    }

    /// Learns from an answer of `kind`: its cost, and for a GET which bucket it drew on.
    pub(super) fn answered(
        &mut self,
        kind: &CallKind,
        now: Instant,
        p: Option<f64>,
        units: Option<f64>,
    ) {
        let level = self.write_level;
        if kind.changes {
            self.write_level = Some((now, p.unwrap_or(0.0)));
        }
        let k = self.entry(kind);
        if let Some(u) = units.filter(|u| u.is_finite() && *u >= 0.0) {
            k.units = 0.8 * k.units + 0.2 * u;
        }
        if kind.changes {
            return;
        }
        let Some((at, w)) = level else { return };
        if now.duration_since(at) > LEVEL_FRESH || w < 0.85 {
            // Nothing to compare with: the write bucket's level is unknown or low.
            return;
        }
        let vote = match p {
            Some(p) if p >= w - 0.05 => VOTE,
            Some(p) if p >= w - 0.1 => 0.0,
            // Well below the write bucket's level, or no header at all: another bucket.
            _ => -VOTE,
        };
        k.score = (k.score + vote).clamp(-1.0, 1.0);
        k.writes = k.score > 0.0;
    }

    /// A 429 naming the write limit answered `kind`: it draws on the write budget.
    pub(super) fn throttled_by_writes(&mut self, kind: &CallKind) {
        let k = self.entry(kind);
        k.score = 1.0;
        k.writes = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_is_its_method_and_path_without_ids_or_arguments() {
        let a = CallKind::of(
            &Method::GET,
            "https://graph.microsoft.com/beta/users/alice%40x.com/authentication/fido2Methods/creationOptions(challengeTimeoutInMinutes=5)",
        );
        let b = CallKind::of(
            &Method::GET,
            "http://127.0.0.1:9/beta/users/0f3c1d2e-1111-2222-3333-444455556666/authentication/fido2Methods/creationOptions",
        );
        assert_eq!(a, b);
        assert_eq!(
            a.key,
            "GET beta users {} authentication fido2Methods creationOptions"
        );
        assert!(!a.changes);
        let post = CallKind::of(
            &Method::POST,
            "https://g/beta/users/bob@x.com/authentication/fido2Methods",
        );
        assert!(post.changes);
        assert_ne!(
            CallKind::of(&Method::GET, "https://g/v1.0/users?$top=999"),
            CallKind::of(&Method::GET, "https://g/v1.0/users/delta()")
        );
    }

    fn kinds() -> (CallKind, CallKind) {
        (
            CallKind::of(
                &Method::POST,
                "https://g/beta/users/u@x/authentication/fido2Methods",
            ),
            CallKind::of(
                &Method::GET,
                "https://g/beta/users/u@x/authentication/fido2Methods/creationOptions",
            ),
        )
    }

    #[test]
    fn a_get_that_answers_with_the_write_buckets_level_is_learnt_to_draw_on_it() {
        let (post, options) = kinds();
        let mut k = Kinds::default();
        let t = Instant::now();
        assert!(!k.get(&options).writes, "a GET starts as a read");
        assert!(k.get(&post).writes);
        for _ in 0..3 {
            k.answered(&post, t, Some(0.9), Some(1.0));
            k.answered(&options, t, Some(0.9), Some(1.0));
        }
        assert!(k.get(&options).writes);
        // And back, when its answers stop matching the write bucket's level.
        for _ in 0..5 {
            k.answered(&post, t, Some(0.9), None);
            k.answered(&options, t, None, None);
        }
        assert!(!k.get(&options).writes);
    }

    #[test]
    fn nothing_is_learnt_while_the_write_bucket_is_low_or_its_level_stale() {
        let (post, options) = kinds();
        let mut k = Kinds::default();
        let t = Instant::now();
        for _ in 0..10 {
            k.answered(&post, t, None, None);
            k.answered(&options, t, None, None);
        }
        k.answered(&post, t, Some(0.9), None);
        for _ in 0..10 {
            k.answered(&options, t + Duration::from_secs(3), Some(0.9), None);
        }
        assert_eq!(k.get(&options).score, -2.0 * VOTE);
    }

    #[test]
    fn a_write_limit_429_settles_it_and_costs_are_averaged() {
        let (_, options) = kinds();
        let mut k = Kinds::default();
        k.throttled_by_writes(&options);
        assert!(k.get(&options).writes);
        let t = Instant::now();
        for _ in 0..50 {
            k.answered(&options, t, None, Some(2.0));
        }
        assert!((k.get(&options).units - 2.0).abs() < 0.01);
    }
}
