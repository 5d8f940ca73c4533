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
