//! `behalf --server URL login | logout`: the CLI signs in to a Behalf server with a device flow.
//! The CLI shows a short code; an admin already signed in (the panel, or an API token) approves
//! it; the CLI, polling meanwhile, is then handed a token of its own.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use behalf_domain::Secret;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::client::{Refused, Remote};
use super::session::{self, ServerSession, parse_expiry};
use crate::cmd::login::LoginArgs;

#[derive(Deserialize)]
struct DeviceStart {
    device_code: String,
    user_code: String,
    expires_in: u64,
    #[serde(default = "default_interval")]
    interval: u64,
}

fn default_interval() -> u64 {
    5
}

#[derive(Deserialize)]
struct Issued {
    access_token: String,
    #[serde(default)]
    expires_at: serde_json::Value,
}

#[allow(clippy::print_stdout)] // the code and the outcome are this command's output
pub async fn login(remote: &Remote, args: &LoginArgs) -> anyhow::Result<ExitCode> {
    let path = session::path()?;
    if args.status {
        return Ok(match ServerSession::load(&path)? {
            Some(s) if s.server == remote.base && !s.is_expired() => {
                println!("Signed in to {}, {}.", s.server, s.describe_expiry());
                ExitCode::SUCCESS
            }
            Some(s) if s.server == remote.base => {
                println!(
                    "The sign-in to {} has {}. Run `behalf --server {} login`.",
                    s.server,
                    s.describe_expiry(),
                    s.server
                );
                ExitCode::FAILURE
            }
            _ => {
                println!(
                    "Not signed in to {}. Run `behalf --server {} login`.",
                    remote.base, remote.base
                );
                ExitCode::FAILURE
            }
        });
    }
    anyhow::ensure!(
        args.tenant.is_none() && args.client_id.is_none(),
        "--tenant and --client-id are for signing in to Entra ID; `behalf --server URL login` signs in to the Behalf server"
    );
    let start: DeviceStart = remote
        .json(remote.request(Method::POST, "/api/v1/auth/device"))
        .await
        .context("cannot start the sign-in")?;
    let device_code = Secret::new(start.device_code);
    println!(
        "To sign in, approve code {code} in Behalf's panel (Settings → CLI sign-ins) or with: curl -X POST -H 'Authorization: Bearer <admin token>' -H 'Content-Type: application/json' -d '{{\"user_code\":\"{code}\"}}' {base}/api/v1/auth/device/approve",
        code = start.user_code,
        base = remote.base,
    );
    println!(
        "Waiting for the approval (the code expires in {} minutes)…",
        start.expires_in.div_ceil(60)
    );
    let deadline = Instant::now() + Duration::from_secs(start.expires_in);
    let mut interval = Duration::from_secs(start.interval.clamp(1, 60));
    let issued: Issued = loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the code {} expired before it was approved: run `behalf --server {} login` again",
            start.user_code,
            remote.base
        );
        tokio::time::sleep(interval).await;
        let poll = remote
            .request(Method::POST, "/api/v1/auth/device/token")
            .json(&json!({"device_code": device_code.expose()}));
        match remote.json::<Issued>(poll).await {
            Ok(issued) => break issued,
            Err(e) => match e.downcast_ref::<Refused>() {
                Some(r) if r.status == StatusCode::BAD_REQUEST => {
                    match r.problem.error.as_deref() {
                        Some("authorization_pending") => {}
                        // OAuth's device flow: poll more slowly from now on.
                        Some("slow_down") => interval += Duration::from_secs(5),
                        _ => return Err(e.context("the sign-in was not approved")),
                    }
                }
                _ => return Err(e.context("the sign-in failed")),
            },
        }
    };
    let token = Secret::new(issued.access_token);
    let session = ServerSession::new(&remote.base, &token, parse_expiry(&issued.expires_at));
    session.save(&path)?;
    println!(
        "Signed in to {}, {}.",
        remote.base,
        session.describe_expiry()
    );
    Ok(ExitCode::SUCCESS)
}

/// Forgets the saved sign-in. The token itself stays valid until it expires or an owner revokes
/// it (the API has no endpoint for a token to revoke itself).
#[allow(clippy::print_stdout)]
pub async fn logout(remote: &Remote) -> anyhow::Result<ExitCode> {
    let path = session::path()?;
    if let Ok(Some(s)) = ServerSession::load(&path)
        && s.server == remote.base
        && !s.is_expired()
    {
        // The server revokes the token itself, so a copy of the file is worth nothing either.
        let request = remote
            .request(reqwest::Method::POST, "/api/v1/auth/logout")
            .bearer_auth(s.token().expose());
        if let Err(e) = remote.send(request).await {
            eprintln!("warning: the server did not revoke the sign-in ({e:#}); forgetting it here");
        }
    }
    match ServerSession::load(&path) {
        Ok(Some(s)) if s.server != remote.base => {
            println!(
                "Not signed in to {} (signed in to {}).",
                remote.base, s.server
            );
            return Ok(ExitCode::SUCCESS);
        }
        Ok(None) => {
            println!("Not signed in to {}.", remote.base);
            return Ok(ExitCode::SUCCESS);
        }
        // A damaged file is removed too: that is the way out the load error points to.
        Ok(Some(_)) | Err(_) => {}
    }
    match std::fs::remove_file(&path) {
        Ok(()) => println!("Signed out of {}.", remote.base),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("Not signed in to {}.", remote.base)
        }
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
    Ok(ExitCode::SUCCESS)
}
