//! The schema files parse into `Attribute`s and say what RFC 7643 §8.7.1 and Entra's attribute
//! mappings need.

use super::*;

fn attr(kind: ResourceKind, path: &str) -> &'static Attribute {
    let p = crate::filter::parse::attr_path_text(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    attribute(kind, &p).unwrap_or_else(|| panic!("{path} is not defined for {kind:?}"))
}

mod rfc7643_8_7_1_schema_representation {
    use super::*;

    #[test]
    fn every_schema_file_parses_into_attributes() {
        for (name, text) in [
            ("user.json", USER_JSON),
            ("enterprise_user.json", ENTERPRISE_USER_JSON),
            ("group.json", GROUP_JSON),
            ("common.json", COMMON_JSON),
        ] {
            let s: Schema = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!s.attributes.is_empty(), "{name} has no attributes");
        }
        let resource_types: Value = serde_json::from_str(RESOURCE_TYPES_JSON).unwrap();
        assert_eq!(resource_types.as_array().map(Vec::len), Some(2));
        let config: Value = serde_json::from_str(SERVICE_PROVIDER_CONFIG_JSON).unwrap();
        assert_eq!(config["patch"]["supported"], true);
    }

    #[test]
    fn the_user_schema_has_every_attribute_entra_maps() {
        for path in [
            "userName",
            "name.givenName",
            "name.familyName",
            "name.formatted",
            "displayName",
            "emails.value",
            "emails.type",
            "emails.primary",
            "active",
            "externalId",
            "title",
            "preferredLanguage",
            "phoneNumbers.value",
            "phoneNumbers.type",
            "addresses.streetAddress",
            "addresses.locality",
            "addresses.region",
            "addresses.postalCode",
            "addresses.country",
            "addresses.type",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:organization",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:division",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        ] {
            attr(ResourceKind::User, path);
        }
    }

    #[test]
    fn the_group_schema_has_display_name_external_id_and_members() {
        for path in [
            "displayName",
            "externalId",
            "members.value",
            "members.type",
            "id",
        ] {
            attr(ResourceKind::Group, path);
        }
        assert!(attr(ResourceKind::Group, "members").multi_valued);
    }

    #[test]
    fn characteristics_are_those_of_rfc_7643() {
        let user_name = attr(ResourceKind::User, "userName");
        assert_eq!(user_name.attr_type, AttrType::String);
        assert!(user_name.required);
        assert!(!user_name.case_exact, "userName is not caseExact");
        assert_eq!(user_name.uniqueness, Uniqueness::Server);

        let id = attr(ResourceKind::User, "id");
        assert!(id.case_exact);
        assert_eq!(id.mutability, Mutability::ReadOnly);
        assert_eq!(id.returned, Returned::Always);

        assert!(attr(ResourceKind::User, "externalId").case_exact);
        assert_eq!(
            attr(ResourceKind::User, "active").attr_type,
            AttrType::Boolean
        );
        assert_eq!(
            attr(ResourceKind::User, "password").returned,
            Returned::Never
        );
        assert_eq!(
            attr(ResourceKind::User, "groups").mutability,
            Mutability::ReadOnly
        );
        assert_eq!(
            attr(ResourceKind::User, "meta.lastModified").attr_type,
            AttrType::DateTime
        );
        let emails = attr(ResourceKind::User, "emails");
        assert!(emails.multi_valued);
        assert_eq!(emails.attr_type, AttrType::Complex);
        assert_eq!(
            emails
                .sub_attribute("type")
                .map(|t| t.canonical_values.clone()),
            Some(vec![
                "work".to_owned(),
                "home".to_owned(),
                "other".to_owned()
            ])
        );
    }

    #[test]
    fn names_resolve_ignoring_case_and_with_the_core_urn() {
        assert_eq!(attr(ResourceKind::User, "USERNAME").name, "userName");
        assert_eq!(attr(ResourceKind::User, "Name.GivenName").name, "givenName");
        assert_eq!(
            attr(
                ResourceKind::User,
                "urn:ietf:params:scim:schemas:core:2.0:User:userName"
            )
            .name,
            "userName"
        );
        assert_eq!(
            attr(
                ResourceKind::User,
                "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:Department"
            )
            .name,
            "department"
        );
    }

    #[test]
    fn undefined_attributes_and_foreign_schemas_resolve_to_nothing() {
        let none = |kind, p: &str| {
            let p = crate::filter::parse::attr_path_text(p).unwrap();
            attribute(kind, &p)
        };
        assert!(none(ResourceKind::User, "shoeSize").is_none());
        assert!(none(ResourceKind::User, "name.nickname").is_none());
        assert!(none(ResourceKind::Group, "userName").is_none());
        assert!(
            none(
                ResourceKind::Group,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
            )
            .is_none()
        );
        // Extension attributes are qualified (RFC 7644 §3.10); bare, they are not core ones.
        assert!(none(ResourceKind::User, "department").is_none());
    }
}

mod rfc7644_4_discovery {
    use super::*;

    const BASE: &str = "https://behalf.example/scim/v2";

    #[test]
    fn schemas_lists_user_enterprise_user_and_group_as_schema_resources() {
        let all = schemas_at(BASE);
        let items = all.as_array().unwrap();
        let ids: Vec<&str> = items.iter().map(|s| s["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [USER, ENTERPRISE_USER, GROUP]);
        for s in items {
            assert_eq!(s["schemas"], json!([SCHEMA]));
            assert_eq!(s["meta"]["resourceType"], "Schema");
            assert_eq!(
                s["meta"]["location"],
                format!("{BASE}/Schemas/{}", s["id"].as_str().unwrap())
            );
            // Each served attribute reads back as an Attribute.
            let attrs: Vec<Attribute> = serde_json::from_value(s["attributes"].clone()).unwrap();
            assert!(!attrs.is_empty());
        }
        assert!(
            schemas().as_array().unwrap()[0]["meta"]
                .get("location")
                .is_none()
        );
    }

    #[test]
    fn the_served_schema_keeps_case_exact_false_as_the_file_says() {
        let user = schema_resource_by_id(BASE, USER).unwrap();
        let user_name = user["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "userName")
            .unwrap();
        assert_eq!(user_name["caseExact"], false);
        assert_eq!(user_name["uniqueness"], "server");
        assert!(schema_resource_by_id(BASE, "urn:nope").is_none());
    }

    #[test]
    fn resource_types_name_the_endpoints_schemas_and_the_enterprise_extension() {
        let types = resource_types(&format!("{BASE}/"));
        let user = &types[0];
        assert_eq!(user["id"], "User");
        assert_eq!(user["endpoint"], "/Users");
        assert_eq!(user["schema"], USER);
        assert_eq!(user["schemaExtensions"][0]["schema"], ENTERPRISE_USER);
        assert_eq!(user["schemaExtensions"][0]["required"], false);
        assert_eq!(
            user["meta"]["location"],
            format!("{BASE}/ResourceTypes/User")
        );
        assert_eq!(types[1]["endpoint"], "/Groups");
        assert_eq!(resource_type(BASE, "group").unwrap()["schema"], GROUP);
    }

    #[test]
    fn service_provider_config_says_what_is_supported() {
        let c = service_provider_config(BASE);
        assert_eq!(c["schemas"], json!([SERVICE_PROVIDER_CONFIG]));
        assert_eq!(c["patch"]["supported"], true);
        assert_eq!(c["bulk"]["supported"], false);
        assert_eq!(c["filter"]["supported"], true);
        assert_eq!(c["filter"]["maxResults"], max_results());
        assert_eq!(c["sort"]["supported"], true);
        assert_eq!(c["etag"]["supported"], true);
        assert_eq!(c["changePassword"]["supported"], false);
        assert_eq!(c["authenticationSchemes"][0]["type"], "oauthbearertoken");
        assert_eq!(
            c["meta"]["location"],
            format!("{BASE}/ServiceProviderConfig")
        );
    }
}
