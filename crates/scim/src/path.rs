//! RFC 7644 §3.5.2 PATCH paths: `PATH = attrPath / valuePath [subAttr]`.

use std::fmt;

use crate::error::ScimError;
use crate::filter::{AttrPath, Filter};

/// A PATCH operation's `path`: `name.givenName`, `members[value eq "…"]`,
/// `emails[type eq "work"].value`, `urn:…:enterprise:2.0:User:department`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute (with its sub-attribute when there is no filter: `name.givenName`).
    pub attr: AttrPath,
    /// The value filter between brackets, its paths relative to the attribute's values.
    pub filter: Option<Filter>,
    /// The sub-attribute after `]` (`value` of `emails[type eq "work"].value`).
    pub sub: Option<String>,
}

impl PatchPath {
    /// A path to a whole attribute.
    pub fn attr(attr: AttrPath) -> Self {
        Self {
            attr,
            filter: None,
            sub: None,
        }
    }
}

/// Parses a PATCH path; errors are 400 `invalidPath` naming the position and what was expected.
pub fn parse_path(text: &str) -> Result<PatchPath, ScimError> {
    let (attr, filter, sub) = crate::filter::parse::path_text(text)?;
    Ok(PatchPath { attr, filter, sub })
}

/// The canonical text, which [`parse_path`] reads back to an equal [`PatchPath`].
impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
            if let Some(sub) = &self.sub {
                write!(f, ".{sub}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod rfc7644_3_5_2_path {
    use super::*;
    use crate::error::ScimType;
    use crate::filter::{CompareOp, parse_filter};

    #[test]
    fn the_path_forms_of_the_rfc_and_entra_parse() {
        let p = parse_path("name.givenName").unwrap();
        assert_eq!(p, PatchPath::attr(AttrPath::with_sub("name", "givenName")));

        let p = parse_path(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(p.attr, AttrPath::new("emails"));
        assert_eq!(p.filter, Some(parse_filter(r#"type eq "work""#).unwrap()));
        assert_eq!(p.sub.as_deref(), Some("value"));

        let p = parse_path(r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#).unwrap();
        assert!(matches!(
            p.filter,
            Some(Filter::Compare(_, CompareOp::Eq, _))
        ));
        assert_eq!(p.sub, None);

        let p =
            parse_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value")
                .unwrap();
        assert_eq!(
            p.attr.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(p.attr.name, "manager");
        assert_eq!(p.attr.sub.as_deref(), Some("value"));
    }

    #[test]
    fn paths_print_canonically_and_read_back() {
        for text in [
            "userName",
            "name.familyName",
            r#"emails[type eq "work" and value co "@x"].value"#,
            r#"addresses[type eq "work"]"#,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        ] {
            let p = parse_path(text).unwrap();
            assert_eq!(p.to_string(), text);
            assert_eq!(parse_path(&p.to_string()), Ok(p));
        }
    }

    #[test]
    fn malformed_paths_are_invalid_path_and_say_where() {
        for (text, at) in [
            ("", 0),
            ("emails[type eq", 14),
            (r#"emails[type eq "work"]value"#, 22),
            (r#"name.givenName[x pr]"#, 0),
            (r#"emails[a[b pr]]"#, 8),
            ("userName extra", 8),
            ("emails.", 7),
        ] {
            let e = parse_path(text).expect_err(text);
            assert_eq!(e.scim_type, Some(ScimType::InvalidPath), "{text}");
            assert!(
                e.detail.contains(&format!("at character {at} ")),
                "{text:?}: {}",
                e.detail
            );
        }
    }
}
