//! OData query options Graph supports on directory objects: `$select`, `$top`, `$filter` (the
//! `eq` / `startswith` subset Entra answers without advanced queries), `$skiptoken` and
//! `$deltatoken`. Paging tokens are opaque to clients (base64url of a small JSON position), as
//! Graph asks clients to treat them (<https://learn.microsoft.com/graph/paging>).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::errors::{Result, SandboxError};

#[derive(Debug, Default)]
pub(crate) struct Query {
    pub params: HashMap<String, String>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        let params = url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .into_owned()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        Query { params }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// `$top`: Graph answers 400 outside 1..=999 for directory objects.
    pub fn top(&self, default: usize) -> Result<usize> {
        match self.get("$top") {
            None => Ok(default),
            Some(raw) => match raw.trim().parse::<i64>() {
                Ok(n) if (1..=999).contains(&n) => Ok(n as usize),
                _ => Err(SandboxError::BadRequest(format!(
                    "Invalid page size specified: '{raw}'. Must be between 1 and 999 inclusive."
                ))),
            },
        }
    }

    /// `$select` as a list of property names (case as given; matched case-insensitively).
    pub fn select(&self) -> Option<Vec<String>> {
        self.get("$select").map(|s| {
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        })
    }
}

pub(crate) fn encode_token<T: Serialize>(t: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(t).unwrap_or_default())
}

pub(crate) fn decode_token<T: DeserializeOwned>(raw: &str) -> Result<T> {
    URL_SAFE_NO_PAD
        .decode(raw.trim())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            SandboxError::BadRequest(
                "The specified page token value has expired or is invalid.".into(),
            )
        })
}

/// A parsed `$filter`: clauses joined by `and`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Filter {
    pub clauses: Vec<Clause>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Str(String),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Clause {
    Eq(String, Value),
    StartsWith(String, String),
}

/// What a filter clause is evaluated against.
pub(crate) trait Filterable {
    /// `None` when the property does not exist or is not filterable.
    fn prop(&self, name: &str) -> Option<Value>;
}

impl Filter {
    /// Parses `prop eq 'v'`, `prop eq true`, `startswith(prop,'v')`, joined by ` and `.
    /// `allowed` lists the filterable properties (lower case); others answer `Request_UnsupportedQuery`.
    pub fn parse(raw: &str, allowed: &[&str]) -> Result<Filter> {
        let bad =
            || SandboxError::BadRequest(format!("Invalid filter clause: syntax error in '{raw}'."));
        let mut clauses = Vec::new();
        for part in split_and(raw) {
            let part = part.trim();
            let clause = if let Some(rest) = strip_prefix_ci(part, "startswith(") {
                let inner = rest.strip_suffix(')').ok_or_else(bad)?;
                let (prop, val) = inner.split_once(',').ok_or_else(bad)?;
                match parse_value(val.trim()).ok_or_else(bad)? {
                    Value::Str(s) => Clause::StartsWith(prop.trim().to_string(), s),
                    Value::Bool(_) => return Err(bad()),
                }
            } else {
                let mut it = part.splitn(3, ' ');
                let (Some(prop), Some(op), Some(val)) = (it.next(), it.next(), it.next()) else {
                    return Err(bad());
                };
                if !op.eq_ignore_ascii_case("eq") {
                    return Err(SandboxError::UnsupportedQuery(format!(
                        "Unsupported query operator '{op}' in filter."
                    )));
                }
                Clause::Eq(prop.to_string(), parse_value(val.trim()).ok_or_else(bad)?)
            };
            let prop = match &clause {
                Clause::Eq(p, _) | Clause::StartsWith(p, _) => p.to_ascii_lowercase(),
            };
            if !allowed.contains(&prop.as_str()) {
                return Err(SandboxError::UnsupportedQuery(format!(
                    "Unsupported or invalid query filter clause specified for property '{prop}' of resource 'User'."
                )));
            }
            clauses.push(clause);
        }
        if clauses.is_empty() {
            return Err(bad());
        }
        Ok(Filter { clauses })
    }

    pub fn matches(&self, obj: &impl Filterable) -> bool {
        self.clauses.iter().all(|c| match c {
            Clause::Eq(p, v) => match (obj.prop(p), v) {
                (Some(Value::Str(a)), Value::Str(b)) => a.eq_ignore_ascii_case(b),
                (Some(Value::Bool(a)), Value::Bool(b)) => a == *b,
                _ => false,
            },
            Clause::StartsWith(p, v) => match obj.prop(p) {
                Some(Value::Str(a)) => a.to_lowercase().starts_with(&v.to_lowercase()),
                _ => false,
            },
        })
    }

    /// A `userPrincipalName eq '…'` filter can use the UPN index.
    pub fn upn_eq(&self) -> Option<&str> {
        match self.clauses.as_slice() {
            [Clause::Eq(p, Value::Str(v))] if p.eq_ignore_ascii_case("userPrincipalName") => {
                Some(v)
            }
            _ => None,
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

/// Splits on ` and ` outside quotes.
fn split_and(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut in_quote = false;
    let mut start = 0;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            in_quote = !in_quote;
        } else if !in_quote && i + 5 <= bytes.len() && s[i..i + 5].eq_ignore_ascii_case(" and ") {
            out.push(&s[start..i]);
            start = i + 5;
            i += 5;
            continue;
        }
        i += 1;
    }
    out.push(&s[start..]);
    out
}

fn parse_value(v: &str) -> Option<Value> {
    if v.eq_ignore_ascii_case("true") {
        return Some(Value::Bool(true));
    }
    if v.eq_ignore_ascii_case("false") {
        return Some(Value::Bool(false));
    }
    let inner = v.strip_prefix('\'')?.strip_suffix('\'')?;
    // OData escapes a quote inside a string literal by doubling it.
    Some(Value::Str(inner.replace("''", "'")))
}

/// Keeps only the selected properties (plus `id`, which Graph always returns).
pub(crate) fn project(
    mut full: serde_json::Map<String, serde_json::Value>,
    select: Option<&[String]>,
    defaults: &[&str],
) -> serde_json::Value {
    let keep = |k: &str| match select {
        Some(sel) => k == "id" || sel.iter().any(|s| s.eq_ignore_ascii_case(k)),
        None => k == "id" || defaults.contains(&k),
    };
    full.retain(|k, _| k.starts_with('@') || keep(k));
    serde_json::Value::Object(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct U;
    impl Filterable for U {
        fn prop(&self, name: &str) -> Option<Value> {
            match name.to_ascii_lowercase().as_str() {
                "displayname" => Some(Value::Str("Ada O'Neil".into())),
                "accountenabled" => Some(Value::Bool(true)),
                _ => None,
            }
        }
    }

    #[test]
    fn filters_parse_and_match() {
        let allowed = ["displayname", "accountenabled"];
        let f = Filter::parse(
            "startswith(displayName,'ada') and accountEnabled eq true",
            &allowed,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(f.matches(&U));
        let f = Filter::parse("displayName eq 'Ada O''Neil'", &allowed)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(f.matches(&U));
        assert!(matches!(
            Filter::parse("displayName ne 'x'", &allowed),
            Err(SandboxError::UnsupportedQuery(_))
        ));
        assert!(matches!(
            Filter::parse("city eq 'x'", &allowed),
            Err(SandboxError::UnsupportedQuery(_))
        ));
        assert!(matches!(
            Filter::parse("displayName eq", &allowed),
            Err(SandboxError::BadRequest(_))
        ));
    }
}
