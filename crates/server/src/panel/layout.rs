//! Who is signed in to the panel, what every page's frame shows, and how a refusal is said.

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use behalf_app::auth::SessionCaller;
use behalf_app::{AppError, Caller};
use behalf_domain::{Admin, Secret};

use crate::ServerState;
use crate::auth::{SESSION_COOKIE, cookie};

/// The panel's sections, one per entry of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Users,
    Groups,
    Jobs,
    Directory,
    Reports,
    Settings,
    /// Pages outside the navigation (sign-in, errors).
    None,
}

impl Section {
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Users => "users",
            Section::Groups => "groups",
            Section::Jobs => "jobs",
            Section::Directory => "directory",
            Section::Reports => "reports",
            Section::Settings => "settings",
            Section::None => "",
        }
    }
}

/// What the frame of a page (`templates/base.html`) needs.
#[derive(Clone)]
pub struct Layout {
    pub title: String,
    pub section: &'static str,
    /// Empty on pages shown signed out: no navigation then.
    pub admin: String,
    pub role: String,
    /// The session's CSRF token, for forms and htmx's `x-csrf-token`.
    pub csrf: String,
    pub may_provision: bool,
    pub may_operate: bool,
    pub is_owner: bool,
    /// Which job the progress bar at the top follows: a job page's own, or whichever runs.
    pub progress_job: Option<String>,
}

impl std::fmt::Debug for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layout")
            .field("title", &self.title)
            .field("admin", &self.admin)
            .field("csrf", &"<hidden>")
            .finish_non_exhaustive()
    }
}

impl Layout {
    /// The frame of a page shown to someone not signed in.
    pub fn bare(title: impl Into<String>) -> Layout {
        Layout {
            title: title.into(),
            section: Section::None.as_str(),
            admin: String::new(),
            role: String::new(),
            csrf: String::new(),
            may_provision: false,
            may_operate: false,
            is_owner: false,
            progress_job: None,
        }
    }

    /// The JSON of `hx-headers` on `<body>`: htmx sends the CSRF token with every request.
    pub fn hx_headers(&self) -> String {
        serde_json::json!({ "x-csrf-token": self.csrf }).to_string()
    }

    pub fn progress_url(&self) -> String {
        match &self.progress_job {
            Some(job) => format!("/panel/progress?job={job}"),
            None => "/panel/progress".into(),
        }
    }
}

/// A signed-in admin, from the session cookie. A browser without a valid session is sent to
/// `/login` instead of reaching the handler.
pub struct Panel {
    pub caller: Caller,
    pub admin: Admin,
    pub session: SessionCaller,
    csrf: Secret,
    /// The request came from htmx (a fragment is wanted, not a page).
    pub htmx: bool,
}

impl std::fmt::Debug for Panel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Panel")
            .field("admin", &self.admin.username)
            .field("csrf", &"<hidden>")
            .finish_non_exhaustive()
    }
}

impl Panel {
    pub fn layout(&self, title: impl Into<String>, section: Section) -> Layout {
        Layout {
            title: title.into(),
            section: section.as_str(),
            admin: self.admin.username.clone(),
            role: self.admin.role.to_string(),
            csrf: self.csrf.expose().to_owned(),
            may_provision: self.caller.may_provision(),
            may_operate: self.caller.may_operate(),
            is_owner: self.caller.is_owner(),
            progress_job: None,
        }
    }

    pub fn csrf(&self) -> &Secret {
        &self.csrf
    }
}

pub(super) fn is_htmx(parts: &Parts) -> bool {
    parts
        .headers
        .get("hx-request")
        .is_some_and(|v| v.as_bytes() == b"true")
}

impl FromRequestParts<ServerState> for Panel {
    type Rejection = PanelError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ServerState,
    ) -> Result<Self, Self::Rejection> {
        let htmx = is_htmx(parts);
        let sign_in = PanelError::SignIn { htmx };
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(sign_in);
        };
        let Some(session) = state.app.session(token).await? else {
            return Err(sign_in);
        };
        let Caller::Admin { admin, .. } = &session.caller else {
            return Err(sign_in);
        };
        Ok(Panel {
            caller: session.caller.clone(),
            admin: admin.clone(),
            csrf: state.app.session_csrf(token).await?,
            session,
            htmx,
        })
    }
}

/// Why a panel request was not carried out, said as a page.
#[derive(Debug)]
pub enum PanelError {
    /// Not signed in (or the session ended): go to the sign-in page.
    SignIn {
        htmx: bool,
    },
    /// Signed in, but the role does not allow it.
    Forbidden(&'static str),
    /// The form's CSRF token is missing or not this session's.
    Csrf,
    App(AppError),
}

impl From<AppError> for PanelError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Unauthenticated => PanelError::SignIn { htmx: false },
            AppError::Forbidden { needed } => PanelError::Forbidden(needed),
            AppError::Csrf => PanelError::Csrf,
            other => PanelError::App(other),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    heading: String,
    message: String,
    retry_after: Option<u64>,
}

impl IntoResponse for PanelError {
    fn into_response(self) -> Response {
        let (status, heading, message, retry_after) = match self {
            PanelError::SignIn { htmx: true } => {
                // htmx follows this header with a full page load.
                let mut r = StatusCode::OK.into_response();
                r.headers_mut()
                    .insert("hx-redirect", HeaderValue::from_static("/login"));
                return r;
            }
            PanelError::SignIn { htmx: false } => return Redirect::to("/login").into_response(),
            PanelError::Forbidden(needed) => (
                StatusCode::FORBIDDEN,
                "Not allowed".to_owned(),
                format!("Your role does not allow this: {needed}."),
                None,
            ),
            PanelError::Csrf => (
                StatusCode::FORBIDDEN,
                "This form has expired".to_owned(),
                "The form did not carry this session's security token (it may come from an older page, or another site). Go back, reload the page and try again.".to_owned(),
                None,
            ),
            PanelError::App(e) => {
                let (status, _, title, _) = crate::problem::classify(&e);
                let retry = match &e {
                    AppError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
                    _ => None,
                };
                // Internal errors were logged by `classify`; their text is not shown.
                let message = match &e {
                    AppError::Internal(_) => "Something went wrong on the server. The log has the details; try again, and report it if it persists.".to_owned(),
                    other => other.to_string(),
                };
                (status, title.to_owned(), message, retry)
            }
        };
        let page = ErrorPage {
            layout: Layout::bare(heading.clone()),
            heading,
            message,
            retry_after,
        };
        let mut response = (status, render(&page)).into_response();
        if let Some(secs) = retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

/// Renders a template; a template that fails to render (a bug) is a plain 500 page.
pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            let mut r = Html(html).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "a panel template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}
