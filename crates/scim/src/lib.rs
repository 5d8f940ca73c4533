//! SCIM 2.0 protocol (RFC 7643 schemas, RFC 7644 operations) with no IO: what the server's
//! `/scim/v2` face and the sandbox's SCIM client share.
#![forbid(unsafe_code)]
