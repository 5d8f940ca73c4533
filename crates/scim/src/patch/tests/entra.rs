//! The request shapes Microsoft documents for its provisioning service
//! (learn.microsoft.com, "Tutorial: Develop and plan provisioning for a SCIM endpoint").

use super::*;

#[test]
fn capitalised_ops_are_read() {
    let r = request(json!([
        {"op": "Add", "path": "title", "value": "a"},
        {"op": "Replace", "path": "title", "value": "b"},
        {"op": "Remove", "path": "title"},
        {"op": "ADD", "path": "title", "value": "c"}
    ]));
    let kinds: Vec<PatchOpKind> = r.operations.iter().map(|o| o.op).collect();
    assert_eq!(
        kinds,
        [
            PatchOpKind::Add,
            PatchOpKind::Replace,
            PatchOpKind::Remove,
            PatchOpKind::Add
        ]
    );
}

#[test]
fn disable_with_the_string_false() {
    // Without the aadOptscim062020 flag: `{"op":"Replace","path":"active","value":"False"}`.
    let out = patched(
        user(),
        ResourceKind::User,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    );
    assert_eq!(out["active"], false);
    let out = patched(
        out,
        ResourceKind::User,
        json!([{"op": "Replace", "path": "active", "value": "True"}]),
    );
    assert_eq!(out["active"], true);
    // With the flag: a boolean inside a no-path value object.
    let out = patched(
        out,
        ResourceKind::User,
        json!([{"op": "replace", "value": {"active": false}}]),
    );
    assert_eq!(out["active"], false);
}

#[test]
fn update_single_and_multi_valued_attributes() {
    let out = patched(
        user(),
        ResourceKind::User,
        json!([
            {"op": "Replace", "path": "userName", "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}
        ]),
    );
    assert_eq!(
        out["userName"],
        "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    );
    assert_eq!(out["emails"][0]["value"], "updatedEmail@microsoft.com");
    assert_eq!(out["emails"][1]["value"], "babs@jensen.org");
    assert_eq!(out["name"]["familyName"], "updatedFamilyName");
}

#[test]
fn a_replace_of_several_attributes_as_one_value_object() {
    // With aadOptscim062020: one replace, no path, keys that are attribute names, paths and
    // URN-qualified extension attributes.
    let out = patched(
        user(),
        ResourceKind::User,
        json!([{
            "op": "replace",
            "value": {
                "displayName": "Babs J.",
                "name.givenName": "Babs",
                "emails[type eq \"work\"].value": "babs@example.com",
                "active": "False",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Tours",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "costCenter": "4130"}
            }
        }]),
    );
    assert_eq!(out["displayName"], "Babs J.");
    assert_eq!(out["name"]["givenName"], "Babs");
    assert_eq!(out["name"]["familyName"], "Jensen");
    assert_eq!(out["emails"][0]["value"], "babs@example.com");
    assert_eq!(out["active"], false);
    assert_eq!(
        out[ENTERPRISE_USER],
        json!({"department": "Tours", "employeeNumber": "701984", "costCenter": "4130"})
    );
    assert_eq!(out["schemas"], json!([USER, ENTERPRISE_USER]));
}

#[test]
fn add_members_with_null_refs() {
    // `{"op":"Add","path":"members","value":[{"$ref":null,"value":"…"}]}`: nulls are unassigned.
    let out = patched(
        group(),
        ResourceKind::Group,
        json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": JIM}, {"$ref": null, "value": BABS}]}]),
    );
    assert_eq!(member_values(&out), [BABS, JIM]);
    assert!(out["members"][1].get("$ref").is_none());
}

#[test]
fn remove_members_by_value_path_and_by_value() {
    let g = patched(
        group(),
        ResourceKind::Group,
        json!([{"op": "Add", "path": "members", "value": [{"value": JIM}]}]),
    );
    // With aadOptscim062020: `members[value eq "…"]`.
    let out = patched(
        g.clone(),
        ResourceKind::Group,
        json!([{"op": "remove", "path": format!("members[value eq \"{JIM}\"]")}]),
    );
    assert_eq!(member_values(&out), [BABS]);
    // Without it: `{"op":"Remove","path":"members","value":[{"$ref":null,"value":"…"}]}`.
    let out = patched(
        g,
        ResourceKind::Group,
        json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": JIM}]}]),
    );
    assert_eq!(member_values(&out), [BABS]);
}

#[test]
fn group_display_name_and_external_id() {
    let out = patched(
        group(),
        ResourceKind::Group,
        json!([
            {"op": "Replace", "path": "displayName", "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"},
            {"op": "Add", "path": "externalId", "value": "60b1f2a2-3ac7-4b34-a3d5-1f2cb3cd3b4e"}
        ]),
    );
    assert_eq!(
        out["displayName"],
        "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    );
    assert_eq!(out["externalId"], "60b1f2a2-3ac7-4b34-a3d5-1f2cb3cd3b4e");
}

#[test]
fn extension_attribute_paths_and_the_manager_as_a_bare_id() {
    let out = patched(
        user(),
        ResourceKind::User,
        json!([
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "701984"},
            {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Tours"},
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": JIM}
        ]),
    );
    assert_eq!(
        out[ENTERPRISE_USER],
        json!({"employeeNumber": "701984", "department": "Tours", "manager": {"value": JIM}})
    );
    let out = patched(
        out,
        ResourceKind::User,
        json!([{"op": "Remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}]),
    );
    assert!(out[ENTERPRISE_USER].get("manager").is_none());
}

#[test]
fn add_a_work_email_and_phone_to_a_user_without_any() {
    // Entra adds `emails[type eq "work"].value` when the user has no work email.
    let out = patched(
        json!({"schemas": [USER], "userName": "new@example.com"}),
        ResourceKind::User,
        json!([
            {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "new@example.com"},
            {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"},
            {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Redmond"},
            {"op": "Add", "path": "preferredLanguage", "value": "en-US"}
        ]),
    );
    assert_eq!(
        out["emails"],
        json!([{"type": "work", "value": "new@example.com"}])
    );
    assert_eq!(
        out["phoneNumbers"],
        json!([{"type": "mobile", "value": "+1 555 0100"}])
    );
    assert_eq!(
        out["addresses"],
        json!([{"type": "work", "locality": "Redmond"}])
    );
    assert_eq!(out["preferredLanguage"], "en-US");
}
