//! RFC 7644 §3.5.2 PATCH, by section, with the RFC's own examples and each request shape
//! Microsoft Entra ID's provisioning service sends.

use serde_json::{Value, json};

use super::*;
use crate::error::ScimType;
use crate::schema::{ENTERPRISE_USER, GROUP, ResourceKind, USER};

const BABS: &str = "2819c223-7f76-453a-919d-413861904646";
const JIM: &str = "902c246b-6245-4190-8e05-00816be7344a";

fn body(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

fn request(ops: Value) -> PatchRequest {
    PatchRequest::from_value(&body(ops)).unwrap_or_else(|e| panic!("{e}"))
}

fn patched(mut resource: Value, kind: ResourceKind, ops: Value) -> Value {
    let req = request(ops);
    apply(&mut resource, &req.operations, kind).unwrap_or_else(|e| panic!("{e}"));
    resource
}

fn refused(resource: &Value, kind: ResourceKind, ops: Value) -> ScimError {
    let mut copy = resource.clone();
    let req = match PatchRequest::from_value(&body(ops)) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let e = apply(&mut copy, &req.operations, kind).expect_err("the PATCH should fail");
    assert_eq!(
        &copy, resource,
        "a failed PATCH leaves the resource as it was"
    );
    e
}

fn user() -> Value {
    json!({
        "schemas": [USER],
        "id": BABS,
        "userName": "bjensen@example.com",
        "name": {"familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "addresses": [
            {"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood", "region": "CA", "postalCode": "91608", "country": "USA", "primary": true},
            {"type": "home", "streetAddress": "456 Hollywood Blvd", "locality": "Hollywood", "region": "CA", "postalCode": "91608", "country": "USA"}
        ],
        "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"}
    })
}

fn group() -> Value {
    json!({
        "schemas": [GROUP],
        "id": "acbf3ae7-8463-4692-b4fd-9b4da3f908ce",
        "displayName": "Tour Guides",
        "members": [{"value": BABS, "display": "Babs Jensen"}]
    })
}

fn member_values(g: &Value) -> Vec<&str> {
    g["members"]
        .as_array()
        .map(|m| m.iter().filter_map(|x| x["value"].as_str()).collect())
        .unwrap_or_default()
}

mod rfc7644_3_5_2_modifying_with_patch {
    use super::*;

    #[test]
    fn the_body_must_name_the_patch_op_schema_and_carry_operations() {
        let e = PatchRequest::from_value(
            &json!({"Operations": [{"op": "add", "path": "title", "value": "x"}]}),
        )
        .unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
        let e =
            PatchRequest::from_value(&json!({"schemas": [crate::schema::PATCH_OP]})).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
        let e =
            PatchRequest::from_value(&body(json!([{"op": "move", "path": "title"}]))).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
        assert!(e.detail.contains("move"), "{}", e.detail);
        let e = PatchRequest::from_value(&body(
            json!([{"op": "add", "path": "emails[type eq", "value": "x"}]),
        ))
        .unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
        assert!(e.detail.contains("operation 1"), "{}", e.detail);
    }

    #[test]
    fn it_deserializes_with_serde_too() {
        let r: PatchRequest = serde_json::from_value(body(
            json!([{"op": "Replace", "path": "title", "value": "x"}]),
        ))
        .unwrap();
        assert_eq!(r.operations[0].op, PatchOpKind::Replace);
        assert!(serde_json::from_value::<PatchRequest>(json!({"Operations": []})).is_err());
    }

    #[test]
    fn operations_apply_in_order_and_all_or_nothing() {
        let u = user();
        let e = refused(
            &u,
            ResourceKind::User,
            json!([
                {"op": "replace", "path": "displayName", "value": "Babs"},
                {"op": "replace", "path": "id", "value": "other"}
            ]),
        );
        assert_eq!(e.scim_type, Some(ScimType::Mutability));
        assert!(e.detail.contains("operation 2"), "{}", e.detail);
        let out = patched(
            u,
            ResourceKind::User,
            json!([
                {"op": "replace", "path": "title", "value": "first"},
                {"op": "replace", "path": "title", "value": "second"}
            ]),
        );
        assert_eq!(out["title"], "second");
    }

    #[test]
    fn read_only_attributes_are_refused_with_mutability() {
        for path in ["id", "meta", "meta.created", "groups"] {
            let e = refused(
                &user(),
                ResourceKind::User,
                json!([{"op": "replace", "path": path, "value": "x"}]),
            );
            assert_eq!(e.status, 400);
            assert_eq!(
                e.scim_type,
                Some(ScimType::Mutability),
                "{path}: {}",
                e.detail
            );
        }
        let e = refused(
            &user(),
            ResourceKind::User,
            json!([{"op": "replace", "value": {"id": "x"}}]),
        );
        assert_eq!(e.scim_type, Some(ScimType::Mutability));
    }

    #[test]
    fn undefined_attributes_are_refused_with_invalid_path() {
        let e = refused(
            &user(),
            ResourceKind::User,
            json!([{"op": "add", "path": "shoeSize", "value": 42}]),
        );
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
        assert!(e.detail.contains("shoeSize"), "{}", e.detail);
        let e = refused(
            &user(),
            ResourceKind::User,
            json!([{"op": "add", "path": "name.nickname", "value": "x"}]),
        );
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
        let e = refused(
            &group(),
            ResourceKind::Group,
            json!([{"op": "add", "path": "userName", "value": "x"}]),
        );
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
        let e = refused(
            &user(),
            ResourceKind::User,
            json!([{"op": "add", "path": "title[value eq \"x\"]", "value": "x"}]),
        );
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
    }

    #[test]
    fn values_of_the_wrong_type_are_refused_with_invalid_value() {
        for (path, v) in [
            ("active", json!("maybe")),
            ("active", json!(1)),
            ("name", json!([1])),
            ("displayName", json!({"a": 1})),
        ] {
            let e = refused(
                &user(),
                ResourceKind::User,
                json!([{"op": "replace", "path": path, "value": v}]),
            );
            assert_eq!(
                e.scim_type,
                Some(ScimType::InvalidValue),
                "{path}: {}",
                e.detail
            );
        }
        let e = refused(
            &user(),
            ResourceKind::User,
            json!([{"op": "add", "path": "emails", "value": [{"value": "x", "colour": "red"}]}]),
        );
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
        assert!(e.detail.contains("colour"), "{}", e.detail);
    }

    #[test]
    fn names_in_paths_and_values_ignore_case_and_are_stored_as_the_schema_spells_them() {
        let out = patched(
            user(),
            ResourceKind::User,
            json!([
                {"op": "replace", "path": "DISPLAYNAME", "value": "Babs"},
                {"op": "add", "path": "Name.MiddleName", "value": "Jane"},
                {"op": "add", "value": {"NickName": "B", "EMAILS": [{"VALUE": "b@x.org", "Type": "other"}]}}
            ]),
        );
        assert_eq!(out["displayName"], "Babs");
        assert!(out.get("DISPLAYNAME").is_none());
        assert_eq!(out["name"]["middleName"], "Jane");
        assert_eq!(out["nickName"], "B");
        assert_eq!(
            out["emails"][2],
            json!({"value": "b@x.org", "type": "other"})
        );
    }
}

mod rfc7644_3_5_2_1_add {
    use super::*;

    #[test]
    fn add_a_member_to_a_group() {
        // The RFC's example: `display` is readOnly (set by the service provider), so it is not
        // taken from the request.
        let out = patched(
            json!({"schemas": [GROUP], "displayName": "Tour Guides"}),
            ResourceKind::Group,
            json!([{
                "op": "add",
                "path": "members",
                "value": [{"display": "Babs Jensen", "$ref": format!("https://example.com/v2/Users/{BABS}"), "value": BABS}]
            }]),
        );
        assert_eq!(
            out["members"],
            json!([{"$ref": format!("https://example.com/v2/Users/{BABS}"), "value": BABS}])
        );
    }

    #[test]
    fn add_without_a_path_adds_each_attribute_of_the_value() {
        // RFC 7644 §3.5.2.1: `{"op":"add","value":{"emails":[…],"nickname":"Babs"}}`.
        let out = patched(
            user(),
            ResourceKind::User,
            json!([{"op": "add", "value": {"emails": [{"value": "babs@jensen.org", "type": "home"}, {"value": "b@babs.org", "type": "other"}], "nickname": "Babs"}}]),
        );
        assert_eq!(out["nickName"], "Babs");
        let emails: Vec<&str> = out["emails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["value"].as_str().unwrap())
            .collect();
        // The home address was there already: not added twice.
        assert_eq!(
            emails,
            ["bjensen@example.com", "babs@jensen.org", "b@babs.org"]
        );
    }

    #[test]
    fn add_to_a_single_valued_attribute_replaces_it_and_to_a_complex_one_merges() {
        let out = patched(
            user(),
            ResourceKind::User,
            json!([
                {"op": "add", "path": "displayName", "value": "Babs"},
                {"op": "add", "path": "name", "value": {"honorificSuffix": "III"}}
            ]),
        );
        assert_eq!(out["displayName"], "Babs");
        assert_eq!(
            out["name"],
            json!({"familyName": "Jensen", "givenName": "Barbara", "honorificSuffix": "III"})
        );
    }

    #[test]
    fn add_a_primary_value_takes_primary_from_the_others() {
        // RFC 7643 §2.4: primary true appears no more than once.
        let out = patched(
            user(),
            ResourceKind::User,
            json!([{"op": "add", "path": "emails", "value": {"value": "new@example.com", "type": "work", "primary": true}}]),
        );
        let primaries: Vec<&str> = out["emails"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["primary"] == true)
            .map(|e| e["value"].as_str().unwrap())
            .collect();
        assert_eq!(primaries, ["new@example.com"]);
    }

    #[test]
    fn add_with_a_value_filter_and_sub_attribute() {
        let out = patched(
            user(),
            ResourceKind::User,
            json!([{"op": "add", "path": "addresses[type eq \"home\"].region", "value": "NY"}]),
        );
        assert_eq!(out["addresses"][1]["region"], "NY");
        assert_eq!(out["addresses"][0]["region"], "CA");
    }

    #[test]
    fn a_value_that_contradicts_its_filter_is_refused() {
        // Nothing matches `type eq "other"`, and the value made from the filter would not match
        // it either once written: adding it again would add a second one.
        let e = refused(
            &user(),
            ResourceKind::User,
            json!([{"op": "add", "path": "emails[type eq \"other\"]", "value": {"type": "home", "value": "x@y.z"}}]),
        );
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn add_needs_a_value() {
        let e = refused(
            &user(),
            ResourceKind::User,
            json!([{"op": "add", "path": "title"}]),
        );
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
        let e = refused(
            &user(),
            ResourceKind::User,
            json!([{"op": "add", "value": "not an object"}]),
        );
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn add_an_extension_attribute_by_its_urn_path_and_list_the_schema() {
        let out = patched(
            user(),
            ResourceKind::User,
            json!([{"op": "add", "path": format!("{ENTERPRISE_USER}:department"), "value": "Tour Operations"}]),
        );
        assert_eq!(out[ENTERPRISE_USER]["department"], "Tour Operations");
        assert_eq!(out["schemas"], json!([USER, ENTERPRISE_USER]));
    }
}

mod rfc7644_3_5_2_2_remove {
    use super::*;

    #[test]
    fn remove_one_member_by_value_filter() {
        let g = patched(
            group(),
            ResourceKind::Group,
            json!([{"op": "add", "path": "members", "value": [{"value": JIM}]}]),
        );
        assert_eq!(member_values(&g), [BABS, JIM]);
        let out = patched(
            g,
            ResourceKind::Group,
            json!([{"op": "remove", "path": format!("members[value eq \"{BABS}\"]")}]),
        );
        assert_eq!(member_values(&out), [JIM]);
    }

    #[test]
    fn remove_all_members() {
        let out = patched(
            group(),
            ResourceKind::Group,
            json!([{"op": "remove", "path": "members"}]),
        );
        assert!(out.get("members").is_none(), "no empty array left: {out}");
    }

    #[test]
    fn remove_the_values_a_complex_filter_selects() {
        let out = patched(
            user(),
            ResourceKind::User,
            json!([{"op": "remove", "path": "emails[type eq \"work\" and value ew \"example.com\"]"}]),
        );
        assert_eq!(
            out["emails"],
            json!([{"value": "babs@jensen.org", "type": "home"}])
        );
    }

    #[test]
    fn replace_all_members_by_remove_then_add() {
        let out = patched(
            group(),
            ResourceKind::Group,
            json!([
                {"op": "remove", "path": "members"},
                {"op": "add", "path": "members", "value": [{"value": JIM, "display": "Jim"}]}
            ]),
        );
        assert_eq!(member_values(&out), [JIM]);
    }

    #[test]
    fn remove_a_single_attribute_and_a_sub_attribute() {
        let out = patched(
            user(),
            ResourceKind::User,
            json!([
                {"op": "remove", "path": "displayName"},
                {"op": "remove", "path": "name.givenName"},
                {"op": "remove", "path": "addresses[type eq \"work\"].postalCode"}
            ]),
        );
        assert!(out.get("displayName").is_none());
        assert_eq!(out["name"], json!({"familyName": "Jensen"}));
        assert!(out["addresses"][0].get("postalCode").is_none());
        assert_eq!(out["addresses"][1]["postalCode"], "91608");
    }

    #[test]
    fn remove_without_a_path_is_no_target() {
        // "If "path" is unspecified, the operation fails with HTTP status code 400 and a
        // "scimType" error code of "noTarget"."
        let e = refused(&user(), ResourceKind::User, json!([{"op": "remove"}]));
        assert_eq!(e.status, 400);
        assert_eq!(e.scim_type, Some(ScimType::NoTarget));
    }

    #[test]
    fn removing_what_is_not_there_changes_nothing() {
        let out = patched(
            group(),
            ResourceKind::Group,
            json!([
                {"op": "remove", "path": format!("members[value eq \"{JIM}\"]")},
                {"op": "remove", "path": "externalId"}
            ]),
        );
        assert_eq!(out, group());
    }

    #[test]
    fn a_required_attribute_cannot_be_removed() {
        let e = refused(
            &user(),
            ResourceKind::User,
            json!([{"op": "remove", "path": "userName"}]),
        );
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
        assert!(e.detail.contains("userName"), "{}", e.detail);
    }

    #[test]
    fn removing_the_last_extension_attribute_drops_the_extension_and_its_schema() {
        let u = patched(
            user(),
            ResourceKind::User,
            json!([{"op": "add", "path": format!("{ENTERPRISE_USER}:department"), "value": "Tours"}]),
        );
        let out = patched(
            u,
            ResourceKind::User,
            json!([{"op": "remove", "path": format!("{ENTERPRISE_USER}:department")}]),
        );
        assert!(out.get(ENTERPRISE_USER).is_none());
        assert_eq!(out["schemas"], json!([USER]));
    }
}

mod rfc7644_3_5_2_3_replace {
    use super::*;

    #[test]
    fn replace_all_members() {
        let out = patched(
            group(),
            ResourceKind::Group,
            json!([{"op": "replace", "path": "members", "value": [{"display": "James Smith", "value": JIM}]}]),
        );
        assert_eq!(member_values(&out), [JIM]);
    }

    #[test]
    fn replace_the_work_address() {
        let out = patched(
            user(),
            ResourceKind::User,
            json!([{
                "op": "replace",
                "path": "addresses[type eq \"work\"]",
                "value": {"type": "work", "streetAddress": "911 Universal City Plaza", "locality": "Hollywood", "region": "CA", "postalCode": "91608", "country": "US", "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US", "primary": true}
            }]),
        );
        assert_eq!(
            out["addresses"][0]["streetAddress"],
            "911 Universal City Plaza"
        );
        assert_eq!(out["addresses"][0]["country"], "US");
        assert_eq!(out["addresses"][1]["streetAddress"], "456 Hollywood Blvd");
    }

    #[test]
    fn replace_one_sub_attribute_of_the_work_address() {
        let out = patched(
            user(),
            ResourceKind::User,
            json!([{"op": "replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1010 Broadway Ave"}]),
        );
        assert_eq!(out["addresses"][0]["streetAddress"], "1010 Broadway Ave");
        assert_eq!(out["addresses"][0]["locality"], "Hollywood");
    }

    #[test]
    fn replace_without_a_path_replaces_each_attribute_of_the_value() {
        let out = patched(
            user(),
            ResourceKind::User,
            json!([{"op": "replace", "value": {"emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}, {"value": "babs@jensen.org", "type": "home"}, {"value": "third@x.org"}], "nickname": "Babs"}}]),
        );
        assert_eq!(out["emails"].as_array().unwrap().len(), 3);
        assert_eq!(out["nickName"], "Babs");
    }

    #[test]
    fn replace_of_a_complex_attribute_leaves_unnamed_sub_attributes() {
        // "Sub-attributes that are not specified in the "value" parameter are left unchanged."
        let out = patched(
            user(),
            ResourceKind::User,
            json!([{"op": "replace", "path": "name", "value": {"givenName": "Babs"}}]),
        );
        assert_eq!(
            out["name"],
            json!({"familyName": "Jensen", "givenName": "Babs"})
        );
    }

    #[test]
    fn a_filter_that_matches_no_value_is_no_target() {
        // "…no record match was made, the service provider SHALL indicate failure by returning
        // HTTP status code 400 and a "scimType" error code of "noTarget"."
        let e = refused(
            &user(),
            ResourceKind::User,
            json!([{"op": "replace", "path": "emails[type eq \"other\"].value", "value": "x@y.z"}]),
        );
        assert_eq!(e.status, 400);
        assert_eq!(e.scim_type, Some(ScimType::NoTarget));
    }

    #[test]
    fn replace_of_an_attribute_that_does_not_exist_is_an_add() {
        // "If the target location path specifies an attribute that does not exist, the service
        // provider SHALL treat the operation as an "add"."
        let out = patched(
            json!({"schemas": [USER], "userName": "new@example.com"}),
            ResourceKind::User,
            json!([
                {"op": "replace", "path": "title", "value": "Guide"},
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@example.com"},
                {"op": "replace", "path": "name.givenName", "value": "New"}
            ]),
        );
        assert_eq!(out["title"], "Guide");
        assert_eq!(
            out["emails"],
            json!([{"type": "work", "value": "new@example.com"}])
        );
        assert_eq!(out["name"], json!({"givenName": "New"}));
    }

    #[test]
    fn replace_with_null_unassigns() {
        let out = patched(
            user(),
            ResourceKind::User,
            json!([{"op": "replace", "path": "displayName", "value": null}]),
        );
        assert!(out.get("displayName").is_none());
    }

    #[test]
    fn an_immutable_sub_attribute_is_not_changed() {
        let e = refused(
            &group(),
            ResourceKind::Group,
            json!([{"op": "replace", "path": format!("members[value eq \"{BABS}\"].value"), "value": JIM}]),
        );
        assert_eq!(e.scim_type, Some(ScimType::Mutability));
    }
}

mod entra;
