//! RFC 7644 §3.4.2.2 filters: the AST, its canonical text, the parser ([`parse_filter`]) and an
//! in-memory evaluator ([`matches`]) for PATCH value paths and tests. The server turns the same AST
//! into SQL; this crate never scans a store.

mod eval;
pub(crate) mod parse;
mod validate;

use std::fmt;

pub use eval::matches;
pub(crate) use eval::{matches_value, parse_datetime, values_equal};
pub use parse::{MAX_DEPTH, MAX_TERMS};
pub use validate::validate;

use crate::error::ScimError;

/// `[URI ":"] ATTRNAME *1subAttr` (RFC 7644 §3.4.2.2 ABNF, also §3.10).
///
/// Names are kept as written so that printing gives back the request's spelling; RFC 7643 §2.1 makes
/// attribute names case-insensitive, so compare them with [`AttrPath::is`] /
/// `eq_ignore_ascii_case`, never with `==` on the strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    /// The schema URN (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`) when the path
    /// is fully qualified.
    pub urn: Option<String>,
    /// The attribute name (`name`, `emails`, `department`).
    pub name: String,
    /// The sub-attribute (`familyName` of `name.familyName`).
    pub sub: Option<String>,
}

impl AttrPath {
    /// An unqualified path with no sub-attribute.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            urn: None,
            name: name.into(),
            sub: None,
        }
    }

    /// `name.sub`.
    pub fn with_sub(name: impl Into<String>, sub: impl Into<String>) -> Self {
        Self {
            urn: None,
            name: name.into(),
            sub: Some(sub.into()),
        }
    }

    /// `urn:name`.
    pub fn qualified(urn: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            urn: Some(urn.into()),
            name: name.into(),
            sub: None,
        }
    }

    /// Whether this is an unqualified path to `name` with no sub-attribute, ignoring case.
    pub fn is(&self, name: &str) -> bool {
        self.urn.is_none() && self.sub.is_none() && self.name.eq_ignore_ascii_case(name)
    }

    /// Equality as SCIM defines it for attribute names: case-insensitive (RFC 7643 §2.1).
    pub fn eq_ignore_case(&self, other: &AttrPath) -> bool {
        fn opt_eq(a: &Option<String>, b: &Option<String>) -> bool {
            match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            }
        }
        opt_eq(&self.urn, &other.urn)
            && self.name.eq_ignore_ascii_case(&other.name)
            && opt_eq(&self.sub, &other.sub)
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// RFC 7644 §3.4.2.2 Table 3 comparison operators (`pr` is [`Filter::Present`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// equal
    Eq,
    /// not equal
    Ne,
    /// contains
    Co,
    /// starts with
    Sw,
    /// ends with
    Ew,
    /// greater than
    Gt,
    /// greater than or equal to
    Ge,
    /// less than
    Lt,
    /// less than or equal to
    Le,
}

impl CompareOp {
    /// Every operator, in Table 3's order.
    pub const ALL: [CompareOp; 9] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ];

    /// The operator as the canonical text writes it (lower case).
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// The operator for a keyword in any case (RFC 7644 §3.4.2.2: "attribute operators used in
    /// filters are case insensitive").
    pub fn from_keyword(word: &str) -> Option<CompareOp> {
        CompareOp::ALL
            .into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `compValue = false / null / true / number / string` (RFC 7644 §3.4.2.2).
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    /// A JSON string, escapes decoded.
    Str(String),
    /// A JSON number.
    Num(serde_json::Number),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // serde_json writes a string as JSON (escaping `"`, `\` and control characters), which
            // is exactly the filter grammar's string.
            CompValue::Str(s) => f.write_str(&serde_json::Value::String(s.clone()).to_string()),
            CompValue::Num(n) => write!(f, "{n}"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Null => f.write_str("null"),
        }
    }
}

/// A parsed filter (RFC 7644 §3.4.2.2). Grouping parentheses leave no node: `(a)` is `a`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attrPath compareOp compValue`
    Compare(AttrPath, CompareOp, CompValue),
    /// `attrPath pr`
    Present(AttrPath),
    /// `FILTER and FILTER`
    And(Box<Filter>, Box<Filter>),
    /// `FILTER or FILTER`
    Or(Box<Filter>, Box<Filter>),
    /// `not (FILTER)`
    Not(Box<Filter>),
    /// `emails[type eq "work" and value co "@x"]`: the inner filter's paths are relative to the
    /// attribute, and one value of the attribute must match it as a whole.
    ValuePath(AttrPath, Box<Filter>),
}

impl Filter {
    /// `a and b`.
    pub fn and(a: Filter, b: Filter) -> Filter {
        Filter::And(Box::new(a), Box::new(b))
    }

    /// `a or b`.
    pub fn or(a: Filter, b: Filter) -> Filter {
        Filter::Or(Box::new(a), Box::new(b))
    }

    /// `not (a)`.
    pub fn negate(a: Filter) -> Filter {
        Filter::Not(Box::new(a))
    }

    /// `attr eq "value"`.
    pub fn eq_str(attr: AttrPath, value: impl Into<String>) -> Filter {
        Filter::Compare(attr, CompareOp::Eq, CompValue::Str(value.into()))
    }

    // Binding strength for printing: `or` < `and` < everything else (RFC 7644 §3.4.2.2: "not" >
    // "and" > "or").
    fn precedence(&self) -> u8 {
        match self {
            Filter::Or(..) => 1,
            Filter::And(..) => 2,
            _ => 3,
        }
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, min: u8) -> fmt::Result {
        let paren = self.precedence() < min;
        if paren {
            f.write_str("(")?;
        }
        match self {
            Filter::Compare(a, op, v) => write!(f, "{a} {op} {v}")?,
            Filter::Present(a) => write!(f, "{a} pr")?,
            // The parser groups `a or b or c` to the left, so a right operand of the same
            // operator needs parentheses to come back as the same tree.
            Filter::Or(l, r) => {
                l.write(f, 1)?;
                f.write_str(" or ")?;
                r.write(f, 2)?;
            }
            Filter::And(l, r) => {
                l.write(f, 2)?;
                f.write_str(" and ")?;
                r.write(f, 3)?;
            }
            Filter::Not(inner) => {
                f.write_str("not (")?;
                inner.write(f, 0)?;
                f.write_str(")")?;
            }
            Filter::ValuePath(a, inner) => {
                write!(f, "{a}[")?;
                inner.write(f, 0)?;
                f.write_str("]")?;
            }
        }
        if paren {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// The canonical text: lower-case operators and literals, single spaces, JSON strings, and only the
/// parentheses the tree needs. [`parse_filter`] reads it back to an equal [`Filter`].
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, 0)
    }
}

/// Parses an attribute path (`name.givenName`, `urn:…:enterprise:2.0:User:department`): what the
/// `attributes`, `excludedAttributes` (a comma-separated list of these) and `sortBy` parameters
/// carry. Errors are 400 `invalidValue` naming the position.
pub fn parse_attr_path(text: &str) -> Result<AttrPath, ScimError> {
    parse::attr_path_text(text)
}

/// Parses the comma-separated list of an `attributes` / `excludedAttributes` parameter.
pub fn parse_attr_list(text: &str) -> Result<Vec<AttrPath>, ScimError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_attr_path)
        .collect()
}

/// Parses a filter (the `filter` query parameter or a `/.search` body's `filter`).
///
/// Errors are 400 `invalidFilter` whose detail names the position (in characters, from 0) and what
/// was expected there.
pub fn parse_filter(text: &str) -> Result<Filter, ScimError> {
    parse::filter_text(text)
}

#[cfg(test)]
mod tests;
