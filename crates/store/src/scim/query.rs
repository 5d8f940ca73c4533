//! SCIM list queries as SQL: a filter over the columns SCIM keeps (RFC 7644 §3.4.2.2), a sort
//! (§3.4.2.3) and a page (§3.4.2.4), turned into one parameterised `WHERE … ORDER BY … LIMIT`.
//!
//! The condition is this crate's own small tree, not the protocol crate's filter (the store
//! knows nothing of SCIM's grammar): the application layer maps each attribute path to a
//! [`ScimAttr`] with a column, and refuses the ones without. Every value is bound; the SQL text
//! holds only the column names and operators below.

use behalf_domain::Millis;

/// An attribute with a column (or a row of a side table) behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimAttr {
    /// `id` (users and groups): Behalf's UUID, compared exactly.
    Id,
    /// `userName`: compared case-insensitively (on `upn_key`).
    UserName,
    /// `externalId`: caseExact (RFC 7643 §3.1).
    ExternalId,
    /// `displayName`: case-insensitive.
    DisplayName,
    /// `active`: a boolean.
    Active,
    /// `meta.created`, a time.
    Created,
    /// `meta.lastModified`, a time.
    LastModified,
    /// `emails.value` (case-insensitive), a row of `scim_user_emails`.
    EmailValue,
    /// `emails.type` (case-insensitive).
    EmailType,
    /// `emails.primary`, a boolean.
    EmailPrimary,
    /// `members.value` of a group: a user's id.
    MemberValue,
}

/// What kind of value an attribute holds, which decides the operators it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimAttrType {
    /// Compared as the text it is (ids, externalId).
    ExactText,
    /// Compared lowercased on both sides.
    FoldedText,
    Bool,
    Time,
}

/// The element table a multi-valued attribute's rows live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimMulti {
    Emails,
    Members,
}

impl ScimAttr {
    pub fn value_type(self) -> ScimAttrType {
        match self {
            ScimAttr::Id | ScimAttr::ExternalId | ScimAttr::MemberValue => ScimAttrType::ExactText,
            ScimAttr::UserName
            | ScimAttr::DisplayName
            | ScimAttr::EmailValue
            | ScimAttr::EmailType => ScimAttrType::FoldedText,
            ScimAttr::Active | ScimAttr::EmailPrimary => ScimAttrType::Bool,
            ScimAttr::Created | ScimAttr::LastModified => ScimAttrType::Time,
        }
    }

    /// The side table whose rows hold this attribute, for attributes of a multi-valued one.
    pub fn multi(self) -> Option<ScimMulti> {
        match self {
            ScimAttr::EmailValue | ScimAttr::EmailType | ScimAttr::EmailPrimary => {
                Some(ScimMulti::Emails)
            }
            ScimAttr::MemberValue => Some(ScimMulti::Members),
            _ => None,
        }
    }
}

/// RFC 7644 §3.4.2.2's comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A comparison's right-hand side, already of the attribute's type.
#[derive(Debug, Clone, PartialEq)]
pub enum ScimValue {
    Text(String),
    Bool(bool),
    Time(Millis),
    Null,
}

/// A filter over SCIM's columns.
#[derive(Debug, Clone, PartialEq)]
pub enum ScimCond {
    Compare(ScimAttr, ScimOp, ScimValue),
    Present(ScimAttr),
    And(Box<ScimCond>, Box<ScimCond>),
    Or(Box<ScimCond>, Box<ScimCond>),
    Not(Box<ScimCond>),
    /// `emails[…]`, `members[…]`: one element satisfies the whole inner condition.
    Any(ScimMulti, Box<ScimCond>),
}

/// What a list is sorted by (RFC 7644 §3.4.2.3); ties are broken by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScimSort {
    /// Creation order (ids are UUID v7).
    #[default]
    Id,
    UserName,
    DisplayName,
    ExternalId,
    Created,
    LastModified,
}

/// One page of a list: filter, sort, and 0-based offset and limit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScimQuery {
    pub filter: Option<ScimCond>,
    pub sort: ScimSort,
    pub descending: bool,
    pub offset: i64,
    pub limit: i64,
}

impl ScimQuery {
    /// The folded key when this is the lookup an identity provider sends before a write
    /// (`userName eq "…"` alone, first page, at least one row asked for): its answer is that
    /// user or none, found by `upn_key`.
    pub(crate) fn user_name_lookup(&self) -> Option<String> {
        match &self.filter {
            Some(ScimCond::Compare(ScimAttr::UserName, ScimOp::Eq, ScimValue::Text(name)))
                if self.offset == 0 && self.limit > 0 =>
            {
                Some(fold(name))
            }
            _ => None,
        }
    }
}

/// A case-insensitive attribute's text as its `_key` column holds it.
pub(crate) fn fold(text: &str) -> String {
    text.to_lowercase()
}

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

/// Which resource table a query reads: `u` (users) or `g` (directory_groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    User,
    Group,
}

/// Why a condition cannot become SQL (the application layer checks these first; this is the
/// store's own guard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// SQL text and its binds, placeholders numbered from the `first` given to [`Sql::new`].
#[derive(Debug)]
pub(crate) struct Sql {
    pub text: String,
    pub binds: Vec<Bind>,
    next: usize,
}

impl Sql {
    pub fn new(first: usize) -> Sql {
        Sql {
            text: String::new(),
            binds: Vec::new(),
            next: first,
        }
    }

    fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        let p = format!("${}", self.next);
        self.next += 1;
        p
    }
}

/// The column an attribute is compared on, in the table aliased `u`, `g`, `e` or `m`.
fn column(resource: Resource, attr: ScimAttr) -> Result<&'static str, Unsupported> {
    let on = |what: &str| Unsupported(format!("{what} has no column here"));
    Ok(match (resource, attr) {
        (Resource::User, ScimAttr::Id) => "u.id",
        (Resource::User, ScimAttr::UserName) => "u.upn_key",
        (Resource::User, ScimAttr::ExternalId) => "u.scim_external_id",
        (Resource::User, ScimAttr::DisplayName) => "u.scim_display_key",
        (Resource::User, ScimAttr::Active) => "u.enabled",
        (Resource::User, ScimAttr::Created) => "u.created_at",
        (Resource::User, ScimAttr::LastModified) => "u.updated_at",
        (Resource::User, ScimAttr::EmailValue) => "e.value_key",
        (Resource::User, ScimAttr::EmailType) => "e.type_key",
        (Resource::User, ScimAttr::EmailPrimary) => "e.is_primary",
        (Resource::Group, ScimAttr::Id) => "g.id",
        (Resource::Group, ScimAttr::ExternalId) => "g.scim_external_id",
        (Resource::Group, ScimAttr::DisplayName) => "g.scim_display_key",
        (Resource::Group, ScimAttr::Created) => "g.created_at",
        (Resource::Group, ScimAttr::LastModified) => "g.updated_at",
        (Resource::Group, ScimAttr::MemberValue) => "m.user_id",
        (Resource::User, ScimAttr::MemberValue) => return Err(on("members.value")),
        (
            Resource::Group,
            ScimAttr::UserName
            | ScimAttr::Active
            | ScimAttr::EmailValue
            | ScimAttr::EmailType
            | ScimAttr::EmailPrimary,
        ) => return Err(on("this attribute of a user")),
    })
}

/// `\`, `%` and `_` escaped for a `LIKE … ESCAPE '\'` pattern.
fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Writes `cond` as a boolean SQL expression. `inside` is the element table being filtered
/// (inside `emails[…]`), where element attributes are plain columns; elsewhere an element
/// attribute becomes an `IN (SELECT …)` over its table.
pub(crate) fn write_cond(
    sql: &mut Sql,
    resource: Resource,
    cond: &ScimCond,
    inside: Option<ScimMulti>,
) -> Result<(), Unsupported> {
    match cond {
        ScimCond::And(a, b) | ScimCond::Or(a, b) => {
            let op = if matches!(cond, ScimCond::And(..)) {
                "AND"
            } else {
                "OR"
            };
            sql.text.push('(');
            write_cond(sql, resource, a, inside)?;
            sql.text.push_str(&format!(" {op} "));
            write_cond(sql, resource, b, inside)?;
            sql.text.push(')');
        }
        ScimCond::Not(inner) => {
            // RFC 7644 §3.4.2.2 `not`: the complement. SQL's NOT of an unknown (a NULL column)
            // is unknown, so the inner test is made two-valued first.
            sql.text.push_str("(NOT COALESCE(");
            write_cond(sql, resource, inner, inside)?;
            sql.text.push_str(", FALSE))");
        }
        ScimCond::Any(multi, inner) => {
            if inside.is_some() {
                return Err(Unsupported("a value path inside a value path".into()));
            }
            write_any(sql, resource, *multi, |sql| {
                write_cond(sql, resource, inner, Some(*multi))
            })?;
        }
        ScimCond::Present(attr) | ScimCond::Compare(attr, ..) => {
            if let Some(multi) = attr.multi()
                && inside != Some(multi)
            {
                if inside.is_some() {
                    return Err(Unsupported("an attribute of another value path".into()));
                }
                return write_any(sql, resource, multi, |sql| {
                    write_cond(sql, resource, cond, Some(multi))
                });
            }
            if attr.multi().is_none() && inside.is_some() {
                return Err(Unsupported(
                    "an attribute of the resource inside a value path".into(),
                ));
            }
            let col = column(resource, *attr)?;
            match cond {
                ScimCond::Present(_) => write_present(sql, col, attr.value_type()),
                ScimCond::Compare(_, op, value) => {
                    write_compare(sql, col, attr.value_type(), *op, value)?
                }
                _ => unreachable!("matched above"),
            }
        }
    }
    Ok(())
}

fn write_any(
    sql: &mut Sql,
    resource: Resource,
    multi: ScimMulti,
    inner: impl FnOnce(&mut Sql) -> Result<(), Unsupported>,
) -> Result<(), Unsupported> {
    let head = match (resource, multi) {
        (Resource::User, ScimMulti::Emails) => {
            "u.id IN (SELECT e.user_id FROM scim_user_emails e WHERE "
        }
        (Resource::Group, ScimMulti::Members) => {
            "g.id IN (SELECT m.group_id FROM group_members m WHERE "
        }
        (Resource::User, ScimMulti::Members) => {
            return Err(Unsupported("users have no members".into()));
        }
        (Resource::Group, ScimMulti::Emails) => {
            return Err(Unsupported("groups have no emails".into()));
        }
    };
    sql.text.push_str(head);
    inner(sql)?;
    sql.text.push(')');
    Ok(())
}

fn write_present(sql: &mut Sql, col: &str, ty: ScimAttrType) {
    // RFC 7644 §3.4.2.2 `pr`: has a non-empty value.
    match ty {
        ScimAttrType::ExactText | ScimAttrType::FoldedText => sql
            .text
            .push_str(&format!("({col} IS NOT NULL AND {col} <> '')")),
        ScimAttrType::Bool | ScimAttrType::Time => {
            sql.text.push_str(&format!("({col} IS NOT NULL)"))
        }
    }
}

fn write_compare(
    sql: &mut Sql,
    col: &str,
    ty: ScimAttrType,
    op: ScimOp,
    value: &ScimValue,
) -> Result<(), Unsupported> {
    let cmp = |op: ScimOp| match op {
        ScimOp::Eq => "=",
        ScimOp::Ne => "<>",
        ScimOp::Gt => ">",
        ScimOp::Ge => ">=",
        ScimOp::Lt => "<",
        ScimOp::Le => "<=",
        ScimOp::Co | ScimOp::Sw | ScimOp::Ew => "LIKE",
    };
    match (ty, value) {
        (_, ScimValue::Null) => match op {
            ScimOp::Eq => sql.text.push_str(&format!("({col} IS NULL)")),
            ScimOp::Ne => sql.text.push_str(&format!("({col} IS NOT NULL)")),
            _ => return Err(Unsupported("only eq and ne compare with null".into())),
        },
        (ScimAttrType::ExactText | ScimAttrType::FoldedText, ScimValue::Text(text)) => {
            let text = if ty == ScimAttrType::FoldedText {
                fold(text)
            } else {
                text.clone()
            };
            match op {
                ScimOp::Co | ScimOp::Ew => {
                    let pattern = if op == ScimOp::Co {
                        format!("%{}%", like_escape(&text))
                    } else {
                        format!("%{}", like_escape(&text))
                    };
                    let p = sql.bind(Bind::Text(pattern));
                    sql.text.push_str(&format!("({col} LIKE {p} ESCAPE '\\')"));
                }
                ScimOp::Sw => {
                    // A range over the column's index: every text that starts with `text`
                    // sorts at or after it and before it followed by the highest code point.
                    let from = sql.bind(Bind::Text(text.clone()));
                    let to = sql.bind(Bind::Text(format!("{text}\u{10FFFF}")));
                    sql.text
                        .push_str(&format!("({col} >= {from} AND {col} < {to})"));
                }
                ScimOp::Ne => {
                    // Not identical: an absent value is not identical either.
                    let p = sql.bind(Bind::Text(text));
                    sql.text
                        .push_str(&format!("({col} <> {p} OR {col} IS NULL)"));
                }
                other => {
                    let p = sql.bind(Bind::Text(text));
                    sql.text.push_str(&format!("({col} {} {p})", cmp(other)));
                }
            }
        }
        (ScimAttrType::Bool, ScimValue::Bool(b)) => match op {
            ScimOp::Eq | ScimOp::Ne => {
                let p = sql.bind(Bind::Int(i64::from(*b)));
                sql.text.push_str(&format!("({col} {} {p})", cmp(op)));
            }
            _ => return Err(Unsupported("a boolean takes only eq, ne and pr".into())),
        },
        (ScimAttrType::Time, ScimValue::Time(at)) => match op {
            ScimOp::Co | ScimOp::Sw | ScimOp::Ew => {
                return Err(Unsupported(
                    "a dateTime takes eq, ne, gt, ge, lt, le and pr".into(),
                ));
            }
            _ => {
                let p = sql.bind(Bind::Int(*at));
                sql.text.push_str(&format!("({col} {} {p})", cmp(op)));
            }
        },
        _ => {
            return Err(Unsupported(
                "the value is not of the attribute's type".into(),
            ));
        }
    }
    Ok(())
}

/// `ORDER BY …` for `sort`: nulls last ascending, first descending; ties by id.
pub(crate) fn order_by(resource: Resource, sort: ScimSort, descending: bool) -> String {
    let col = match (resource, sort) {
        (Resource::User, ScimSort::UserName) => "upn_key",
        (Resource::Group, ScimSort::UserName) | (_, ScimSort::DisplayName) => "scim_display_key",
        (_, ScimSort::ExternalId) => "scim_external_id",
        (_, ScimSort::Created) => "created_at",
        (_, ScimSort::LastModified) => "updated_at",
        (_, ScimSort::Id) => "id",
    };
    let a = alias(resource);
    if sort == ScimSort::Id {
        return format!(
            "ORDER BY {a}.id {}",
            if descending { "DESC" } else { "ASC" }
        );
    }
    if descending {
        format!("ORDER BY ({a}.{col} IS NULL) DESC, {a}.{col} DESC, {a}.id DESC")
    } else {
        format!("ORDER BY ({a}.{col} IS NULL) ASC, {a}.{col} ASC, {a}.id ASC")
    }
}

/// Whether `cond` matches at most one row of `resource` in a connection: an equality on a
/// unique column (anyone's `id`; a user's `userName`, unique in the workspace by
/// `UNIQUE (workspace_id, upn_key)`), alone or as one side of an `and`. Such a page needs no
/// ORDER BY, and without one SQLite answers from the index alone instead of building a
/// temporary B-tree to sort one row (a tenth of the `userName eq` lookup's time, the lookup
/// Entra sends before every create).
pub(crate) fn at_most_one(resource: Resource, cond: &ScimCond) -> bool {
    match cond {
        ScimCond::Compare(ScimAttr::Id, ScimOp::Eq, ScimValue::Text(_)) => true,
        ScimCond::Compare(ScimAttr::UserName, ScimOp::Eq, ScimValue::Text(_)) => {
            resource == Resource::User
        }
        ScimCond::And(a, b) => at_most_one(resource, a) || at_most_one(resource, b),
        _ => false,
    }
}

fn alias(resource: Resource) -> &'static str {
    match resource {
        Resource::User => "u",
        Resource::Group => "g",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(attr: ScimAttr, op: ScimOp, v: &str) -> ScimCond {
        ScimCond::Compare(attr, op, ScimValue::Text(v.into()))
    }

    #[test]
    fn only_a_lone_user_name_eq_on_the_first_page_is_a_lookup() {
        let query = |filter: ScimCond, offset: i64, limit: i64| ScimQuery {
            filter: Some(filter),
            sort: ScimSort::Id,
            descending: false,
            offset,
            limit,
        };
        let ann = text(ScimAttr::UserName, ScimOp::Eq, "Ann@X.com");
        assert_eq!(
            query(ann.clone(), 0, 100).user_name_lookup().as_deref(),
            Some("ann@x.com")
        );
        assert_eq!(query(ann.clone(), 1, 100).user_name_lookup(), None);
        assert_eq!(query(ann.clone(), 0, 0).user_name_lookup(), None);
        let sw = text(ScimAttr::UserName, ScimOp::Sw, "ann");
        assert_eq!(query(sw.clone(), 0, 100).user_name_lookup(), None);
        let both = ScimCond::And(Box::new(ann), Box::new(sw));
        assert_eq!(query(both, 0, 100).user_name_lookup(), None);
    }

    #[test]
    fn conditions_become_bound_sql_over_columns() {
        let cond = ScimCond::And(
            Box::new(text(ScimAttr::UserName, ScimOp::Eq, "Ann@X.com")),
            Box::new(ScimCond::Not(Box::new(text(
                ScimAttr::EmailValue,
                ScimOp::Co,
                "50%",
            )))),
        );
        let mut sql = Sql::new(3);
        write_cond(&mut sql, Resource::User, &cond, None).unwrap();
        assert_eq!(
            sql.text,
            "((u.upn_key = $3) AND (NOT COALESCE(u.id IN (SELECT e.user_id FROM scim_user_emails e WHERE (e.value_key LIKE $4 ESCAPE '\\')), FALSE)))"
        );
        assert_eq!(
            sql.binds,
            [Bind::Text("ann@x.com".into()), Bind::Text("%50\\%%".into())]
        );
    }

    #[test]
    fn type_mismatches_and_foreign_attributes_are_refused() {
        let mut sql = Sql::new(1);
        let bad = ScimCond::Compare(ScimAttr::Active, ScimOp::Gt, ScimValue::Bool(true));
        assert!(write_cond(&mut sql, Resource::User, &bad, None).is_err());
        let bad = text(ScimAttr::UserName, ScimOp::Eq, "x");
        assert!(write_cond(&mut sql, Resource::Group, &bad, None).is_err());
    }

    #[test]
    fn only_an_equality_on_a_unique_column_is_known_to_match_one_row() {
        let user_name = text(ScimAttr::UserName, ScimOp::Eq, "ann@x.com");
        assert!(at_most_one(Resource::User, &user_name));
        // Groups have no userName column of their own, and display names are not unique.
        assert!(!at_most_one(Resource::Group, &user_name));
        assert!(at_most_one(
            Resource::Group,
            &text(ScimAttr::Id, ScimOp::Eq, "g")
        ));
        let narrowed = ScimCond::And(
            Box::new(ScimCond::Present(ScimAttr::ExternalId)),
            Box::new(user_name.clone()),
        );
        assert!(at_most_one(Resource::User, &narrowed));
        let widened = ScimCond::Or(
            Box::new(user_name.clone()),
            Box::new(text(ScimAttr::UserName, ScimOp::Eq, "bob@x.com")),
        );
        assert!(!at_most_one(Resource::User, &widened));
        assert!(!at_most_one(
            Resource::User,
            &ScimCond::Not(Box::new(user_name))
        ));
        assert!(!at_most_one(
            Resource::User,
            &text(ScimAttr::UserName, ScimOp::Sw, "ann")
        ));
        assert!(!at_most_one(
            Resource::User,
            &text(ScimAttr::DisplayName, ScimOp::Eq, "Ann")
        ));
    }
}
