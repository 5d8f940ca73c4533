//! Conformance suite of the sandbox, over HTTP only: each case asserts the status and error code
//! Microsoft documents. One test binary (modules below) keeps link time down.
#![forbid(unsafe_code)]

mod authenticator;
mod certificates;
mod common;
mod delta;
mod groups;
mod login_page;
mod mysecurityinfo;
mod oauth;
mod oidc;
mod passkeys;
mod passwords;
mod tap_policy;
mod throttling;
mod users;
