//! Configuration: the seeded tenant, its app registrations, and the fault / throttling knobs.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use uuid::{Uuid, uuid};

/// The sandbox tenant's id (fixed, so a sandbox always looks like the same tenant).
pub const TENANT_ID: Uuid = uuid!("8d2c6a4e-0b1f-4e7a-9c3d-5f6e7a8b9c0d");
/// The tenant's verified domain: user principal names end in `@contoso.example`.
pub const DOMAIN: &str = "contoso.example";
/// The seeded confidential app Behalf uses (client credentials).
pub const PROVISIONING_CLIENT_ID: Uuid = uuid!("5c7f6d3e-8a41-4b0c-9e2f-0d1a2b3c4d5e");
/// Its client secret. A sandbox secret, deliberately public.
pub const PROVISIONING_CLIENT_SECRET: &str = "sandbox~provisioning~secret";
/// A confidential app that may only read users (for 403 tests).
pub const READER_CLIENT_ID: Uuid = uuid!("1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d");
pub const READER_CLIENT_SECRET: &str = "sandbox~reader~secret";
/// A public client for the device code flow (an admin's interactive CLI login).
pub const CLI_CLIENT_ID: Uuid = uuid!("9e8d7c6b-5a49-4382-a716-f5e4d3c2b1a0");
/// A confidential web app for admins' OpenID Connect sign-in to Behalf (authorization code +
/// PKCE), with the loopback redirect URIs a local Behalf uses.
pub const SIGNIN_CLIENT_ID: Uuid = uuid!("3b9e2f71-6c0d-4a85-b1e4-7d2c9a0f5e63");
/// Its client secret. A sandbox secret, deliberately public.
pub const SIGNIN_CLIENT_SECRET: &str = "sandbox~signin~secret";
/// The seeded administrator (always the first user), who approves device codes.
pub const ADMIN_UPN: &str = "admin@contoso.example";

/// An app registration in the sandbox tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppRegistration {
    pub name: String,
    pub client_id: Uuid,
    /// `None` for a public client (device code flow only).
    pub client_secret: Option<String>,
    /// Granted application permissions (the `roles` claim of client-credential tokens).
    pub app_roles: Vec<String>,
    /// Delegated permissions consented for this app (the `scp` claim of user tokens).
    pub delegated_scopes: Vec<String>,
    /// Public certificates (PEM, or base64 DER as Graph's `keyCredential.key`) the app may sign
    /// client assertions with. More can be added while the sandbox runs:
    /// `POST /sandbox/apps/{clientId}/certificates`.
    #[serde(default)]
    pub certificates: Vec<String>,
    /// Redirect URIs of a web app (the authorization code flow). As in Entra, the port of a
    /// loopback URI (`http://localhost`, `http://127.0.0.1`) is not compared (RFC 8252 §7.3).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

/// How `excludeCredentials` ids are written in creationOptions: Graph v1.0 documents base64url;
/// beta documents "Base64URL with a padding number suffix"; some tenants were seen with standard base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "camelCase")]
pub enum CredentialIdEncoding {
    #[default]
    Base64Url,
    Base64,
    Base64UrlPaddingDigit,
}

/// Knobs that can change while the sandbox runs (`PATCH /sandbox/knobs`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Knobs {
    /// The round trip of every Graph / token request: its answer leaves this long after it
    /// came in, the sandbox's own handling included.
    pub latency_ms: u64,
    /// Every Nth Graph request answers 429 (0 = never).
    pub throttle_every: u64,
    /// The `Retry-After` the `throttle_every` knob sends.
    pub retry_after_secs: u64,
    /// Every Mth Graph request not already answered 429 by `throttle_every` answers 503 (0 = never).
    pub fail_every: u64,
    /// Every Kth Graph / token request is dropped: the connection closes with no answer (0 = never).
    pub drop_every: u64,
    /// Every Kth Graph write (POST, PUT, PATCH, DELETE) is carried out and then its answer is
    /// lost: the connection closes after the change was made, as when the network fails on the
    /// way back (0 = never). A client cannot tell it from `drop_every`, where nothing was done.
    pub drop_answer_every: u64,
    /// Emulate Graph's identity throttling (resource units and write budget).
    pub graph_throttling: bool,
    /// Resource units per window; `None` = by tenant size (3,500 / 5,000 / 8,000 per 10 s).
    pub resource_units: Option<u32>,
    pub resource_unit_window_ms: u64,
    /// Writes per app + tenant per window (Graph: 3,000 per 2.5 minutes); 0 = no write budget
    /// (resource units only).
    pub write_budget: u32,
    pub write_window_ms: u64,
    /// `creationOptions` (a GET that issues a challenge) draws on the write budget too.
    /// Microsoft does not document which bucket it draws on; both are reproducible.
    pub creation_options_write: bool,
    /// Writes per second another client of the same app spends from each app's write budget
    /// (another instance sharing the app + tenant budget); 0 = none.
    pub shared_writes_per_sec: f64,
    pub exclude_credentials_encoding: CredentialIdEncoding,
    /// At most this many `members@delta` entries per `/groups/delta` page: a bigger group is
    /// spread over several pages, the same group coming back with the next members, as Graph
    /// does (<https://learn.microsoft.com/graph/delta-query-groups>).
    pub delta_members_per_page: usize,
    /// Answer delta rounds as if every request said `Prefer: return=minimal`: changed objects
    /// carry only `id` and the properties that changed, the least Graph promises ("at least the
    /// properties that have been updated", <https://learn.microsoft.com/graph/delta-query-overview>).
    pub delta_return_minimal: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            latency_ms: 0,
            throttle_every: 0,
            retry_after_secs: 2,
            fail_every: 0,
            drop_every: 0,
            drop_answer_every: 0,
            graph_throttling: true,
            resource_units: None,
            resource_unit_window_ms: 10_000,
            write_budget: 3_000,
            write_window_ms: 150_000,
            creation_options_write: false,
            shared_writes_per_sec: 0.0,
            exclude_credentials_encoding: CredentialIdEncoding::Base64Url,
            delta_members_per_page: 1_000,
            delta_return_minimal: false,
        }
    }
}

/// Everything `Sandbox::start` needs.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub tenant_id: Uuid,
    pub domain: String,
    /// Seeded users (including the admin, who is always first).
    pub users: usize,
    /// Seeded groups; `None` = one per department plus a few project groups.
    pub groups: Option<usize>,
    /// Seed for the deterministic names.
    pub seed: u64,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    pub knobs: Knobs,
    pub apps: Vec<AppRegistration>,
    /// Access token lifetime (Entra: about an hour, `expires_in` 3599).
    pub token_lifetime_secs: i64,
    pub device_code_lifetime_secs: i64,
    pub device_code_interval_secs: i64,
    /// JSON file the directory is loaded from and saved to.
    pub state_file: Option<PathBuf>,
    /// PEM attestation root certificates trusted when the policy enforces attestation.
    pub attestation_roots_pem: Vec<String>,
    /// The FIDO2 method policy a fresh tenant starts with.
    pub policy: crate::Fido2Policy,
    /// Also serve the passkey sign-in page at `https://login.microsoft.com` (an HTTPS listener
    /// of its own with a certificate from a test CA made at start; see
    /// [`crate::Sandbox::login_page_addr`] and [`crate::Sandbox::login_ca_pem`]).
    pub login_page: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            tenant_id: TENANT_ID,
            domain: DOMAIN.into(),
            users: 100,
            groups: None,
            seed: 4,
            port: 0,
            knobs: Knobs::default(),
            apps: default_apps(),
            token_lifetime_secs: 3599,
            device_code_lifetime_secs: 900,
            device_code_interval_secs: 5,
            state_file: None,
            attestation_roots_pem: Vec::new(),
            policy: crate::Fido2Policy::default(),
            login_page: false,
        }
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The seeded app registrations: Behalf's provisioning app, a read-only app, a CLI public client,
/// and the web app admins sign in to Behalf with (OpenID Connect).
pub fn default_apps() -> Vec<AppRegistration> {
    vec![
        AppRegistration {
            name: "Behalf Provisioning".into(),
            client_id: PROVISIONING_CLIENT_ID,
            client_secret: Some(PROVISIONING_CLIENT_SECRET.into()),
            app_roles: strings(&[
                "UserAuthenticationMethod.ReadWrite.All",
                "User.ReadWrite.All",
                "Group.ReadWrite.All",
                "Policy.Read.All",
            ]),
            delegated_scopes: Vec::new(),
            certificates: Vec::new(),
            redirect_uris: Vec::new(),
        },
        AppRegistration {
            name: "Directory Reader".into(),
            client_id: READER_CLIENT_ID,
            client_secret: Some(READER_CLIENT_SECRET.into()),
            app_roles: strings(&["User.Read.All"]),
            delegated_scopes: Vec::new(),
            certificates: Vec::new(),
            redirect_uris: Vec::new(),
        },
        AppRegistration {
            name: "Behalf CLI".into(),
            client_id: CLI_CLIENT_ID,
            client_secret: None,
            app_roles: Vec::new(),
            delegated_scopes: strings(&[
                "UserAuthenticationMethod.ReadWrite.All",
                "User.ReadWrite.All",
                "Group.ReadWrite.All",
                "Policy.Read.All",
                "Policy.ReadWrite.AuthenticationMethod",
                "offline_access",
            ]),
            certificates: Vec::new(),
            redirect_uris: Vec::new(),
        },
        AppRegistration {
            name: "Behalf Admin Sign-in".into(),
            client_id: SIGNIN_CLIENT_ID,
            client_secret: Some(SIGNIN_CLIENT_SECRET.into()),
            app_roles: Vec::new(),
            delegated_scopes: strings(&["openid", "profile", "email", "User.Read"]),
            certificates: Vec::new(),
            redirect_uris: strings(&[
                "http://localhost/auth/oidc/callback",
                "http://127.0.0.1/auth/oidc/callback",
            ]),
        },
    ]
}

/// `behalf sandbox …` flags; flatten into the binary's CLI with `#[command(flatten)]`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Number of seeded users (deterministic names, some disabled).
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Number of seeded groups (default: one per department plus project groups).
    #[arg(long)]
    pub groups: Option<usize>,
    /// The round trip of every Graph and token request, in milliseconds: its answer leaves
    /// this long after it came in, handling included.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Answer every Nth Graph request with 429 + Retry-After (0 = never).
    #[arg(long, default_value_t = 0)]
    pub throttle_every: u64,
    /// Retry-After seconds sent with --throttle-every.
    #[arg(long, default_value_t = 2)]
    pub retry_after: u64,
    /// Answer every Mth Graph request with 503 (0 = never).
    #[arg(long, default_value_t = 0)]
    pub fail_every: u64,
    /// Close the connection without an answer on every Kth request (0 = never).
    #[arg(long, default_value_t = 0)]
    pub drop_every: u64,
    /// Turn off Graph's resource-unit / write-budget throttling model.
    #[arg(long)]
    pub no_graph_throttling: bool,
    /// Writes allowed per app + tenant per write window (Graph: 3000); 0 = no write budget.
    #[arg(long, default_value_t = 3000)]
    pub write_budget: u32,
    /// Write window in seconds (Graph: 150).
    #[arg(long, default_value_t = 150)]
    pub write_window_secs: u64,
    /// `creationOptions` draws on the write budget too (Microsoft does not document which
    /// bucket it draws on).
    #[arg(long)]
    pub creation_options_write: bool,
    /// Resource units per app + tenant per window (default: by tenant size, 3,500 / 5,000 /
    /// 8,000, as Graph publishes).
    #[arg(long)]
    pub resource_units: Option<u32>,
    /// Resource-unit window in seconds (Graph: 10).
    #[arg(long, default_value_t = 10)]
    pub resource_unit_window_secs: u64,
    /// Writes per second another client of the same app spends from the write budget.
    #[arg(long, default_value_t = 0.0)]
    pub shared_writes_per_sec: f64,
    /// Encoding of excludeCredentials ids in creationOptions.
    #[arg(long, value_enum, default_value_t = CredentialIdEncoding::Base64Url)]
    pub exclude_credentials_encoding: CredentialIdEncoding,
    /// JSON file to load the tenant from and save it to (survives restarts).
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Seed for the generated names.
    #[arg(long, default_value_t = 4)]
    pub seed: u64,
    /// Register this certificate (PEM; a private key next to it is ignored) on the provisioning
    /// app, for certificate client credentials (`entra.certificate_file`). Repeatable.
    #[arg(long, value_name = "PEM")]
    pub app_certificate: Vec<PathBuf>,
    /// What to do besides serving (nothing: serve until Ctrl+C).
    #[command(subcommand)]
    pub command: Option<crate::scim_push::SandboxCommand>,
}

impl Args {
    pub fn to_config(&self) -> SandboxConfig {
        SandboxConfig {
            users: self.users.max(1),
            groups: self.groups,
            seed: self.seed,
            port: self.port,
            state_file: self.state_file.clone(),
            knobs: Knobs {
                latency_ms: self.latency_ms,
                throttle_every: self.throttle_every,
                retry_after_secs: self.retry_after,
                fail_every: self.fail_every,
                drop_every: self.drop_every,
                graph_throttling: !self.no_graph_throttling,
                write_budget: self.write_budget,
                write_window_ms: self.write_window_secs.saturating_mul(1000),
                creation_options_write: self.creation_options_write,
                resource_units: self.resource_units,
                resource_unit_window_ms: self.resource_unit_window_secs.saturating_mul(1000),
                shared_writes_per_sec: self.shared_writes_per_sec,
                exclude_credentials_encoding: self.exclude_credentials_encoding,
                ..Knobs::default()
            },
            ..SandboxConfig::default()
        }
    }
}
