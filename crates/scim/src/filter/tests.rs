//! RFC 7644 §3.4.2.2 filters: the RFC's own examples, parsed, printed and matched.

use serde_json::{Value, json};

use super::*;
use crate::schema::ResourceKind;

fn p(text: &str) -> Filter {
    parse_filter(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn attr(name: &str) -> AttrPath {
    AttrPath::new(name)
}

fn s(v: &str) -> CompValue {
    CompValue::Str(v.to_owned())
}

fn cmp(a: AttrPath, op: CompareOp, v: CompValue) -> Filter {
    Filter::Compare(a, op, v)
}

/// Babs Jensen, after RFC 7643 §8.2 (the full User example), with the enterprise extension.
fn babs() -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "name": {"formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "title": "Tour Guide",
        "userType": "Employee",
        "preferredLanguage": "en-US",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "ims": [{"value": "someaimhandle", "type": "aim"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984",
            "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87a4-e5ab50fd4fcd"}
        },
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z",
            "version": "W/\"3694e05e9dff591\""
        }
    })
}

fn m(text: &str) -> bool {
    matches(&p(text), &babs(), ResourceKind::User)
}

mod rfc7644_3_4_2_2_filtering {
    use super::*;

    #[test]
    fn the_rfc_examples_parse_to_the_tree_they_mean() {
        assert_eq!(
            p(r#"userName eq "bjensen""#),
            cmp(attr("userName"), CompareOp::Eq, s("bjensen"))
        );
        assert_eq!(
            p(r#"name.familyName co "O'Malley""#),
            cmp(
                AttrPath::with_sub("name", "familyName"),
                CompareOp::Co,
                s("O'Malley")
            )
        );
        assert_eq!(
            p(r#"userName sw "J""#),
            cmp(attr("userName"), CompareOp::Sw, s("J"))
        );
        assert_eq!(
            p(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#),
            cmp(
                AttrPath::qualified("urn:ietf:params:scim:schemas:core:2.0:User", "userName"),
                CompareOp::Sw,
                s("J")
            )
        );
        assert_eq!(p("title pr"), Filter::Present(attr("title")));
        for (op, o) in [
            ("gt", CompareOp::Gt),
            ("ge", CompareOp::Ge),
            ("lt", CompareOp::Lt),
            ("le", CompareOp::Le),
        ] {
            assert_eq!(
                p(&format!(r#"meta.lastModified {op} "2011-05-13T04:42:34Z""#)),
                cmp(
                    AttrPath::with_sub("meta", "lastModified"),
                    o,
                    s("2011-05-13T04:42:34Z")
                )
            );
        }
        assert_eq!(
            p(r#"title pr and userType eq "Employee""#),
            Filter::and(
                Filter::Present(attr("title")),
                cmp(attr("userType"), CompareOp::Eq, s("Employee"))
            )
        );
        assert_eq!(
            p(r#"title pr or userType eq "Intern""#),
            Filter::or(
                Filter::Present(attr("title")),
                cmp(attr("userType"), CompareOp::Eq, s("Intern"))
            )
        );
        assert_eq!(
            p(
                r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#
            ),
            Filter::and(
                cmp(attr("userType"), CompareOp::Eq, s("Employee")),
                Filter::or(
                    cmp(attr("emails"), CompareOp::Co, s("example.com")),
                    cmp(
                        AttrPath::with_sub("emails", "value"),
                        CompareOp::Co,
                        s("example.org")
                    )
                )
            )
        );
        assert_eq!(
            p(
                r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#
            ),
            Filter::and(
                cmp(attr("userType"), CompareOp::Ne, s("Employee")),
                Filter::negate(Filter::or(
                    cmp(attr("emails"), CompareOp::Co, s("example.com")),
                    cmp(
                        AttrPath::with_sub("emails", "value"),
                        CompareOp::Co,
                        s("example.org")
                    )
                ))
            )
        );
        assert_eq!(
            p(r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#),
            Filter::and(
                cmp(attr("userType"), CompareOp::Eq, s("Employee")),
                Filter::ValuePath(
                    attr("emails"),
                    Box::new(Filter::and(
                        cmp(attr("type"), CompareOp::Eq, s("work")),
                        cmp(attr("value"), CompareOp::Co, s("@example.com"))
                    ))
                )
            )
        );
        assert!(matches!(
            p(r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#),
            Filter::Or(a, b) if matches!(*a, Filter::ValuePath(..)) && matches!(*b, Filter::ValuePath(..))
        ));
    }

    #[test]
    fn the_rfc_examples_match_babs_as_the_rfc_describes() {
        assert!(
            m(r#"userName eq "BJENSEN@EXAMPLE.COM""#),
            "userName is caseExact false"
        );
        assert!(m(r#"name.familyName co "ens""#));
        assert!(m(r#"userName sw "bj""#));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "B""#
        ));
        assert!(m("title pr"));
        assert!(!m("nickName pr"));
        assert!(m(r#"meta.lastModified ge "2011-05-13T04:42:34Z""#));
        assert!(m(r#"meta.lastModified le "2011-05-13T04:42:34Z""#));
        assert!(!m(r#"meta.lastModified gt "2011-05-13T04:42:34Z""#));
        assert!(m(r#"meta.lastModified gt "2011-05-13T04:42:33.999Z""#));
        // Chronological, not textual: 06:42:34+02:00 is the same instant.
        assert!(m(r#"meta.lastModified eq "2011-05-13T06:42:34+02:00""#));
        assert!(m(r#"title pr and userType eq "Employee""#));
        assert!(m(r#"title pr or userType eq "Intern""#));
        assert!(m(
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#
        ));
        assert!(m(
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#
        ));
        assert!(!m(
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#
        ));
        assert!(m(r#"userType eq "Employee" and (emails.type eq "work")"#));
        assert!(m(
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#
        ));
        // One value must match the whole bracket: the work address is not at jensen.org.
        assert!(!m(r#"emails[type eq "work" and value co "@jensen.org"]"#));
        assert!(m(
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#
        ));
    }

    #[test]
    fn every_operator_does_what_table_3_says() {
        assert!(m(r#"title eq "Tour Guide""#));
        assert!(m(r#"title ne "Tour Manager""#));
        assert!(!m(r#"title ne "tour guide""#));
        assert!(m(r#"title co "our G""#));
        assert!(m(r#"title sw "Tour""#));
        assert!(m(r#"title ew "Guide""#));
        assert!(m(r#"title gt "Tour A""#));
        assert!(m(r#"title ge "Tour Guide""#));
        assert!(m(r#"title lt "Tour Z""#));
        assert!(m(r#"title le "tour guide""#));
        assert!(m("title pr"));
        assert!(m("active eq true"));
        assert!(!m("active eq false"));
        assert!(m("active ne false"));
        // Absent attributes: `ne` matches, `eq null` matches, `pr` does not.
        assert!(m(r#"nickName ne "x""#));
        assert!(m("nickName eq null"));
        assert!(!m("title eq null"));
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        // RFC 7644 §3.4.2.2: "not" > "and" > "or".
        assert_eq!(
            p("a pr or b pr and c pr"),
            Filter::or(
                Filter::Present(attr("a")),
                Filter::and(Filter::Present(attr("b")), Filter::Present(attr("c")))
            )
        );
        assert_eq!(
            p("a pr and b pr or c pr"),
            Filter::or(
                Filter::and(Filter::Present(attr("a")), Filter::Present(attr("b"))),
                Filter::Present(attr("c"))
            )
        );
        assert_eq!(
            p("not (a pr) and b pr"),
            Filter::and(
                Filter::negate(Filter::Present(attr("a"))),
                Filter::Present(attr("b"))
            )
        );
        assert_eq!(
            p("(a pr or b pr) and c pr"),
            Filter::and(
                Filter::or(Filter::Present(attr("a")), Filter::Present(attr("b"))),
                Filter::Present(attr("c"))
            )
        );
        // Left-associative chains.
        assert_eq!(
            p("a pr and b pr and c pr"),
            Filter::and(
                Filter::and(Filter::Present(attr("a")), Filter::Present(attr("b"))),
                Filter::Present(attr("c"))
            )
        );
    }

    #[test]
    fn names_operators_and_literals_are_case_insensitive() {
        assert_eq!(
            p(r#"USERNAME EQ "x""#),
            cmp(attr("USERNAME"), CompareOp::Eq, s("x"))
        );
        assert_eq!(
            p("a Pr AND b pR Or NOT (c pr)").to_string(),
            "a pr and b pr or not (c pr)"
        );
        assert_eq!(
            p("active eq True"),
            cmp(attr("active"), CompareOp::Eq, CompValue::Bool(true))
        );
        assert_eq!(
            p("active eq FALSE"),
            cmp(attr("active"), CompareOp::Eq, CompValue::Bool(false))
        );
        assert_eq!(
            p("x eq NULL"),
            cmp(attr("x"), CompareOp::Eq, CompValue::Null)
        );
        assert!(m(r#"USERNAME Eq "bjensen@example.com""#));
        assert!(m(r#"Name.FamilyName EQ "jensen""#));
        assert!(m(r#"EMAILS[TYPE eq "work"]"#));
    }

    #[test]
    fn keywords_are_whole_words_and_may_start_attribute_names() {
        assert_eq!(p("Not0 pr"), Filter::Present(attr("Not0")));
        assert_eq!(
            p(r#"not (Not0[a eq ""])"#),
            Filter::negate(Filter::ValuePath(
                attr("Not0"),
                Box::new(cmp(attr("a"), CompareOp::Eq, s("")))
            ))
        );
        assert_eq!(p("not pr"), Filter::Present(attr("not")));
        assert_eq!(
            p("andy pr and order pr"),
            Filter::and(
                Filter::Present(attr("andy")),
                Filter::Present(attr("order"))
            )
        );
        assert!(parse_filter("a eq truex").is_err());
        assert!(parse_filter("a eq nullable").is_err());
        assert!(parse_filter("a pr andb pr").is_err());
    }

    #[test]
    fn strings_take_json_escapes_and_numbers_json_numbers() {
        assert_eq!(
            p(r#"a eq "q\"uo\\te\u00e9\n""#),
            cmp(attr("a"), CompareOp::Eq, s("q\"uo\\te\u{e9}\n"))
        );
        assert_eq!(
            p(r#"a eq "\ud83d\ude00""#),
            cmp(attr("a"), CompareOp::Eq, s("\u{1F600}"))
        );
        assert_eq!(
            p("a gt 10"),
            cmp(attr("a"), CompareOp::Gt, CompValue::Num(10.into()))
        );
        assert_eq!(p("a gt -1.5e3").to_string(), "a gt -1500.0");
        assert!(parse_filter("a eq 01").is_err());
        assert!(parse_filter(r#"a eq "\x""#).is_err());
        assert!(
            parse_filter("a eq \"tab\there\"").is_err(),
            "raw control characters are not JSON"
        );
    }

    #[test]
    fn case_exactness_follows_the_schema() {
        // id and externalId are caseExact (RFC 7643 §3.1); userName is not.
        assert!(m(r#"id eq "2819c223-7f76-453a-919d-413861904646""#));
        assert!(!m(r#"id eq "2819C223-7F76-453A-919D-413861904646""#));
        assert!(m(r#"externalId eq "701984""#));
        assert!(m(r#"userName eq "BJensen@Example.com""#));
        assert!(m(r#"emails[value eq "BJENSEN@example.com"]"#));
    }

    #[test]
    fn extension_attributes_are_reached_through_their_urn() {
        assert!(m(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "tour operations""#
        ));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87a4-e5ab50fd4fcd""#
        ));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber pr"#
        ));
        assert!(!m(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter pr"#
        ));
        // Unqualified, `department` is not the extension's (RFC 7644 §3.10).
        assert!(!m("department pr"));
    }

    #[test]
    fn a_sub_attribute_after_brackets_joins_the_bracket_filter() {
        assert_eq!(
            p(r#"emails[type eq "work"].value eq "bjensen@example.com""#),
            Filter::ValuePath(
                attr("emails"),
                Box::new(Filter::and(
                    cmp(attr("type"), CompareOp::Eq, s("work")),
                    cmp(attr("value"), CompareOp::Eq, s("bjensen@example.com"))
                ))
            )
        );
        assert!(m(
            r#"emails[type eq "work"].value eq "bjensen@example.com""#
        ));
        assert!(!m(
            r#"emails[type eq "home"].value eq "bjensen@example.com""#
        ));
    }

    #[test]
    fn errors_are_invalid_filter_and_say_where() {
        let mut wrong = Vec::new();
        for (text, at) in [
            ("", 0),
            ("userName", 8),
            (r#"userName xx "a""#, 9),
            (r#"userName eq"#, 11),
            (r#"userName eq "open"#, 12),
            (r#"userName eq "a" and"#, 19),
            (r#"(userName eq "a""#, 16),
            (r#"emails[type eq "work""#, 21),
            (r#"emails[type eq "work"] junk"#, 23),
            (r#"emails[a[b pr]]"#, 8),
            ("a pr )", 5),
            ("1abc pr", 0),
        ] {
            let e = parse_filter(text).expect_err(text);
            assert_eq!(e.status, 400, "{text}");
            assert_eq!(
                e.scim_type,
                Some(crate::error::ScimType::InvalidFilter),
                "{text}"
            );
            if !e.detail.contains(&format!("at character {at} ")) {
                wrong.push(format!("{text:?} → {}", e.detail));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn nesting_and_length_are_bounded() {
        let deep = format!("{}a pr{}", "(".repeat(40), ")".repeat(40));
        assert!(parse_filter(&deep).is_err());
        let ok = format!("{}a pr{}", "(".repeat(30), ")".repeat(30));
        assert_eq!(p(&ok), Filter::Present(attr("a")));
        let long = vec!["a pr"; 300].join(" and ");
        assert!(parse_filter(&long).is_err());
    }

    #[test]
    fn printing_gives_the_canonical_text() {
        for (text, canon) in [
            (r#"userName Eq "bjensen""#, r#"userName eq "bjensen""#),
            ("( a pr )", "a pr"),
            ("a pr or (b pr or c pr)", "a pr or (b pr or c pr)"),
            ("(a pr or b pr) or c pr", "a pr or b pr or c pr"),
            ("not(a pr)", "not (a pr)"),
            (r#"emails[ type eq "work" ]"#, r#"emails[type eq "work"]"#),
            ("a eq 1.0", "a eq 1.0"),
        ] {
            assert_eq!(p(text).to_string(), canon, "{text}");
            assert_eq!(p(canon), p(text));
        }
    }
}

mod rfc7644_3_4_2_2_filter_validation {
    use super::*;

    fn v(text: &str) -> Result<(), crate::error::ScimError> {
        validate(&p(text), ResourceKind::User)
    }

    #[test]
    fn ordering_and_substrings_of_booleans_are_invalid_filters() {
        for text in [
            "active gt true",
            "active le false",
            "active co \"t\"",
            "active eq \"yes\"",
        ] {
            let e = v(text).expect_err(text);
            assert_eq!(
                e.scim_type,
                Some(crate::error::ScimType::InvalidFilter),
                "{text}"
            );
        }
        assert!(v("active eq true").is_ok());
        assert!(v("x509Certificates.value co \"MII\"").is_err(), "binary");
    }

    #[test]
    fn complex_attributes_compare_through_value_or_not_at_all() {
        assert!(v("emails co \"example.com\"").is_ok());
        assert!(v("name eq \"Babs\"").is_err());
        assert!(v("name.givenName eq \"Babs\"").is_ok());
    }

    #[test]
    fn value_paths_need_multi_valued_complex_attributes() {
        assert!(v("emails[type eq \"work\"]").is_ok());
        assert!(v("name[givenName eq \"x\"]").is_err());
        assert!(
            v("emails[primary gt true]").is_err(),
            "checked inside the brackets too"
        );
    }

    #[test]
    fn unknown_attributes_pass_and_match_nothing() {
        assert!(v("shoeSize gt 40").is_ok());
        assert!(!m("shoeSize gt 40"));
    }
}

mod entra_filters {
    use super::*;

    #[test]
    fn the_lookups_entra_sends() {
        // "GET /Users?filter=userName eq "…"" and externalId lookups; only eq and and.
        assert!(m(r#"userName eq "bjensen@example.com""#));
        assert!(m(r#"externalId eq "701984""#));
        assert!(m(
            r#"userName eq "bjensen@example.com" and externalId eq "701984""#
        ));
        assert!(m(
            r#"emails[type eq "work"].value eq "bjensen@example.com""#
        ));
        // Test connection: a random GUID matches nothing.
        assert!(!m(r#"id eq "7b1e3c9a-0d2b-4c5e-9f4a-8b6d2e1f0a3c""#));
        let group = json!({"displayName": "Tour Guides", "members": [{"value": "2819c223-7f76-453a-919d-413861904646"}]});
        assert!(matches(
            &p(r#"displayName eq "tour guides""#),
            &group,
            ResourceKind::Group
        ));
        assert!(matches(
            &p(r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#),
            &group,
            ResourceKind::Group
        ));
    }
}
