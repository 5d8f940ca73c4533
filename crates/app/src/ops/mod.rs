//! The operations, one module per use case, each a set of methods on the handle that may run it.

pub mod behalf_key;
pub mod deprovision;
pub mod directory;
pub mod doctor;
pub mod jobs;
pub mod mail;
pub mod outbound;
pub mod provision;
pub mod report;
pub mod reset;
pub mod scim;
pub mod scim_tokens;
pub mod tap;
pub mod users;
pub mod vault;
