//! Measures the sandbox at scale: start-up time with N users (default 100,000), then pages
//! through every user with `$top=999` over HTTP, and reports peak RSS (VmHWM).
//!
//! cargo run --release -p behalf-sandbox --example sandbox_bench -- 100000
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout)] // a measurement tool prints its numbers

use std::time::Instant;

use behalf_sandbox::{Sandbox, SandboxConfig};
use serde_json::Value;

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let users: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let t0 = Instant::now();
    let sb = Sandbox::start(SandboxConfig {
        users,
        ..SandboxConfig::default()
    })
    .await?;
    let startup = t0.elapsed();
    println!("users: {users}");
    println!("start-up: {startup:.2?} (seed + bind)");
    println!(
        "peak RSS after start-up: {} MiB",
        vm_hwm_kib().unwrap_or(0) / 1024
    );

    let http = reqwest::Client::new();
    let token: Value = http
        .post(sb.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &sb.client_id().to_string()),
            ("client_secret", sb.client_secret()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await?
        .json()
        .await?;
    let token = token["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let t1 = Instant::now();
    let mut next = Some(format!("{}/v1.0/users?$top=999", sb.graph_url()));
    let (mut pages, mut seen) = (0usize, 0usize);
    while let Some(url) = next {
        let r = http.get(&url).bearer_auth(&token).send().await?;
        if !r.status().is_success() {
            return Err(format!("{url}: {}", r.status()).into());
        }
        let v: Value = r.json().await?;
        seen += v["value"].as_array().map_or(0, Vec::len);
        pages += 1;
        next = v["@odata.nextLink"].as_str().map(String::from);
    }
    let paging = t1.elapsed();
    println!(
        "paged {seen} users in {pages} pages of $top=999: {paging:.2?} ({:.1} ms/page)",
        paging.as_secs_f64() * 1000.0 / pages as f64
    );
    println!("peak RSS (VmHWM): {} MiB", vm_hwm_kib().unwrap_or(0) / 1024);
    if seen != users {
        return Err(format!("expected {users} users, saw {seen}").into());
    }
    sb.shutdown().await;
    Ok(())
}
