//! Any bytes as a PATCH body applied to a fixed User and Group: reading the body and applying it
//! never panics, and a failed PATCH leaves the resource unchanged.
#![no_main]

use behalf_scim::patch::{PatchRequest, apply};
use behalf_scim::schema::{ENTERPRISE_USER, GROUP, ResourceKind, USER};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(req) = PatchRequest::from_value(&body) else {
        return;
    };
    let user = json!({
        "schemas": [USER, ENTERPRISE_USER],
        "id": "u1",
        "userName": "bjensen@example.com",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "active": true,
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
        ENTERPRISE_USER: {"department": "Tours", "manager": {"value": "u2"}}
    });
    let group = json!({"schemas": [GROUP], "id": "g1", "displayName": "Tour Guides", "members": [{"value": "u1"}]});
    for (resource, kind) in [(user, ResourceKind::User), (group, ResourceKind::Group)] {
        let mut after = resource.clone();
        if apply(&mut after, &req.operations, kind).is_err() {
            assert_eq!(after, resource, "a failed PATCH changed the resource");
        }
    }
});
