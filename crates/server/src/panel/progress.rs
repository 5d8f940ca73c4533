//! The progress bar at the top of every page: the job a page follows, or the one running now.
//! While the job runs the fragment asks for itself again every second (htmx polling); once
//! the job has ended it stays, marked done, until dismissed or another job starts.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use behalf_app::ops::jobs::JobView;
use behalf_domain::{ItemState, JobId, JobState, now_millis};
use serde::Deserialize;

use super::form::PanelForm;
use super::layout::{Panel, PanelError, render};
use crate::ServerState;
use crate::auth::cookie;

const DISMISSED_COOKIE: &str = "behalf_dismissed";
/// How long a finished job stays on the bar of pages that do not follow it.
const SHOW_FINISHED_FOR_MS: i64 = 15 * 60 * 1000;

/// The numbers a progress bar shows.
#[derive(Debug, Clone)]
pub struct ProgressView {
    pub job: String,
    pub kind: String,
    pub total: i64,
    pub finished: i64,
    pub registered: i64,
    pub failed: i64,
    pub skipped: i64,
    /// `running`, `done`, `failed` (ended with failures) or `cancelled`.
    pub state: &'static str,
    /// Users per second since the job started.
    pub rate: String,
    pub eta: String,
}

impl ProgressView {
    pub fn of(view: &JobView) -> ProgressView {
        let c = &view.counts;
        let (registered, failed, skipped) = (
            c.get(ItemState::Registered),
            c.get(ItemState::Failed),
            c.get(ItemState::Skipped),
        );
        let finished = registered + failed + skipped;
        let total = c.total();
        let elapsed_s = ((now_millis() - view.job.created_at).max(1) as f64) / 1000.0;
        let end_s = ((view.job.updated_at - view.job.created_at).max(1) as f64) / 1000.0;
        let state = if view.job.state == JobState::Cancelled {
            "cancelled"
        } else if !view.finished() {
            "running"
        } else if failed > 0 {
            "failed"
        } else {
            "done"
        };
        let over = if state == "running" { elapsed_s } else { end_s };
        let per_s = finished as f64 / over;
        let eta = if state != "running" {
            String::new()
        } else if per_s > 0.0 {
            let left = ((total - finished) as f64 / per_s).ceil() as u64;
            format!("{}:{:02} left", left / 60, left % 60)
        } else {
            "starting".into()
        };
        ProgressView {
            job: view.job.id.to_string(),
            kind: describe_kind(&view.kind()),
            total,
            finished,
            registered,
            failed,
            skipped,
            state,
            rate: format!("{per_s:.1}/s"),
            eta,
        }
    }

    pub fn running(&self) -> bool {
        self.state == "running"
    }
}

/// A job's kind in words: `selection:…` → "Selected users", `user:a@b` → "a@b".
pub fn describe_kind(kind: &str) -> String {
    match kind.split_once(':') {
        Some(("selection", _)) => "Selected users".into(),
        Some(("csv", source)) => format!("CSV {source}"),
        Some(("user", upn)) => upn.to_owned(),
        Some(("upns", upns)) => upns.replace(',', ", "),
        // The manual path: the users were mailed a pass and register a passkey themselves.
        Some(("manual", rest)) => format!("{} (a pass mailed to each)", describe_kind(rest)),
        _ if kind == "automatic" => "Everyone without a passkey".into(),
        _ => kind.to_owned(),
    }
}

#[derive(Template)]
#[template(path = "progress.html")]
struct ProgressFragment {
    progress: Option<ProgressView>,
    follows: bool,
    csrf: String,
}

#[derive(Debug, Deserialize)]
pub struct ProgressQuery {
    job: Option<String>,
}

/// `GET /panel/progress[?job=ID]`.
pub async fn fragment(
    State(state): State<ServerState>,
    panel: Panel,
    headers: HeaderMap,
    Query(query): Query<ProgressQuery>,
) -> Result<Response, PanelError> {
    let reader = state.app.reader(&panel.caller);
    let followed = query.job.as_deref().and_then(|j| j.parse::<JobId>().ok());
    let view = match followed {
        Some(id) => Some(reader.job(id).await?),
        None => {
            let dismissed = cookie(&headers, DISMISSED_COOKIE).unwrap_or_default();
            reader.list_jobs(5, None).await?.into_iter().find(|v| {
                !v.finished()
                    || (now_millis() - v.job.updated_at < SHOW_FINISHED_FOR_MS
                        && v.job.id.to_string() != dismissed)
            })
        }
    };
    Ok(render(&ProgressFragment {
        progress: view.as_ref().map(ProgressView::of),
        follows: followed.is_some(),
        csrf: panel.csrf().expose().to_owned(),
    }))
}

/// `POST /panel/progress/dismiss`: hides a finished job's bar on pages that do not follow it.
pub async fn dismiss(form: PanelForm) -> Response {
    let job = form
        .data
        .get("job")
        .and_then(|j| j.parse::<JobId>().ok())
        .map(|j| j.to_string())
        .unwrap_or_default();
    let mut r = render(&ProgressFragment {
        progress: None,
        follows: false,
        csrf: form.panel.csrf().expose().to_owned(),
    })
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{DISMISSED_COOKIE}={job}; Path=/; Max-Age=86400; Secure; HttpOnly; SameSite=Strict"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::describe_kind;

    #[test]
    fn a_jobs_kind_is_said_in_words_and_a_manual_job_says_so() {
        assert_eq!(describe_kind("automatic"), "Everyone without a passkey");
        assert_eq!(describe_kind("user:a@contoso.com"), "a@contoso.com");
        assert_eq!(
            describe_kind("manual:upns:a@contoso.com,b@contoso.com"),
            "a@contoso.com, b@contoso.com (a pass mailed to each)"
        );
        assert_eq!(
            describe_kind("manual:selection:0190"),
            "Selected users (a pass mailed to each)"
        );
    }
}
