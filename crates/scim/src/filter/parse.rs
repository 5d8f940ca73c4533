//! The filter and PATCH-path grammar of RFC 7644 §3.4.2.2 and §3.5.2, hand-written with winnow.
//!
//! Why our own parser rather than scim_v2's (the crate STACK.md names): not for printing or error
//! positions. scim_v2 1.0 (checked in its source) does both: its `Filter` implements `Display`
//! and its LALRPOP parser reports byte locations, with depth and term limits. We write our own
//! because the AST is the contract between this crate, the store's SQL translation and the
//! sandbox's client, and the agreed one (binary `and`/`or`, one `Filter` type whose value paths
//! hold a `Filter`, numbers as `serde_json::Number`) is not scim_v2's (n-ary operands, a separate
//! `ValFilter`, its own value types): using it would mean a conversion layer both ways. A
//! hand-written winnow grammar also keeps under our control the leniencies listed below, the
//! wording of `invalidFilter` details (a character position and what was expected there, in
//! words), and the dependency tree (no lalrpop-util, fluent-uri or second set of SCIM models
//! next to our schema files). winnow gives the byte offset of a failure
//! ([`winnow::error::ParseError::offset`]).
//!
//! The ABNF (RFC 7644 §3.4.2.2, Figure 1), with `not` > `and` > `or` and left-associative `and`/`or`:
//! ```text
//! FILTER    = attrExp / logExp / valuePath / *1"not" "(" FILTER ")"
//! valuePath = attrPath "[" valFilter "]"
//! attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
//! logExp    = FILTER SP ("and" / "or") SP FILTER
//! compValue = false / null / true / number / string
//! attrPath  = [URI ":"] ATTRNAME *1subAttr
//! ATTRNAME  = ALPHA *(nameChar);  nameChar = "-" / "_" / DIGIT / ALPHA;  subAttr = "." ATTRNAME
//! PATH      = attrPath / valuePath [subAttr]                      (§3.5.2)
//! ```
//! Beyond the ABNF, for what clients send: any ASCII whitespace where SP is required (a decoded
//! `+`), no space needed between `not` and `(`, `$ref` as an attribute name, and inside a filter
//! `emails[type eq "work"].value eq "x"` read as `emails[type eq "work" and value eq "x"]`.

use winnow::ascii::Caseless;
use winnow::combinator::{not, terminated};
use winnow::error::{ContextError, ErrMode, StrContext, StrContextValue};
use winnow::prelude::*;
use winnow::token::{literal, one_of, take_while};

use super::{AttrPath, CompValue, CompareOp, Filter};
use crate::error::{ScimError, ScimType};

type In<'a> = &'a str;

/// Parentheses, `not`s and brackets nested deeper than this are refused: the parser, the printer
/// and the evaluator recurse, and a request must not be able to exhaust the stack.
pub const MAX_DEPTH: u32 = 32;
/// Comparisons in one filter at most (the tree's depth grows with the length of an `and` chain).
pub const MAX_TERMS: u32 = 256;

struct Budget {
    depth: u32,
    terms: u32,
}

fn expected<T>(what: &'static str) -> ModalResult<T> {
    let mut e = ContextError::new();
    e.push(StrContext::Expected(StrContextValue::Description(what)));
    Err(ErrMode::Cut(e))
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

// RFC 8141 URNs as SCIM uses them (`urn:ietf:params:scim:schemas:core:2.0:User`); parentheses,
// brackets, quotes and spaces end the path.
fn is_urn_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '%' | '+')
}

fn ws0(i: &mut In<'_>) -> ModalResult<()> {
    take_while(0.., is_ws).void().parse_next(i)
}

fn ws1(i: &mut In<'_>) -> ModalResult<()> {
    take_while(1.., is_ws).void().parse_next(i)
}

/// A keyword in any case, not followed by a name character (`and` but not `android`).
fn keyword<'a>(word: &'static str) -> impl Parser<In<'a>, (), ErrMode<ContextError>> {
    terminated(literal(Caseless(word)), not(one_of(is_name_char))).void()
}

/// Consumes `word` as a keyword if it is one here; leaves the input untouched if not (a failed
/// winnow parser may have moved the input: "Not0" would lose its "Not").
fn try_keyword(i: &mut In<'_>, word: &'static str) -> bool {
    let cp = i.checkpoint();
    if keyword(word).parse_next(i).is_ok() {
        true
    } else {
        i.reset(&cp);
        false
    }
}

fn char_lit(i: &mut In<'_>, c: char) -> bool {
    match i.strip_prefix(c) {
        Some(rest) => {
            *i = rest;
            true
        }
        None => false,
    }
}

/// `ATTRNAME = ALPHA *(nameChar)`, and `$ref`.
fn attr_name(i: &mut In<'_>) -> ModalResult<String> {
    let name: ModalResult<&str> = (
        one_of(|c: char| c.is_ascii_alphabetic() || c == '$'),
        take_while(0.., is_name_char),
    )
        .take()
        .parse_next(i);
    match name {
        Ok(n) => Ok(n.to_owned()),
        Err(_) => expected("an attribute name"),
    }
}

fn opt_sub_attr(i: &mut In<'_>) -> ModalResult<Option<String>> {
    if char_lit(i, '.') {
        Ok(Some(attr_name(i)?))
    } else {
        Ok(None)
    }
}

/// `attrPath = [URI ":"] ATTRNAME *1subAttr`. A URN runs to its last `:`; what follows is the
/// attribute (`…:enterprise:2.0:User:manager.value`).
pub(crate) fn attr_path(i: &mut In<'_>) -> ModalResult<AttrPath> {
    let s = *i;
    if s.len() >= 4 && s.as_bytes()[..4].eq_ignore_ascii_case(b"urn:") {
        let len = s.find(|c: char| !is_urn_char(c)).unwrap_or(s.len());
        let colon = s[..len].rfind(':').unwrap_or(3);
        let urn = &s[..colon];
        *i = &s[colon + 1..];
        let name = attr_name(i)?;
        let sub = opt_sub_attr(i)?;
        return Ok(AttrPath {
            urn: Some(urn.to_owned()),
            name,
            sub,
        });
    }
    let name = attr_name(i)?;
    let sub = opt_sub_attr(i)?;
    Ok(AttrPath {
        urn: None,
        name,
        sub,
    })
}

/// `FILTER SP "or" SP FILTER`, left-associative, weakest.
fn or_expr(i: &mut In<'_>, nested: bool, b: &mut Budget) -> ModalResult<Filter> {
    let mut acc = and_expr(i, nested, b)?;
    loop {
        let cp = i.checkpoint();
        if (ws1, keyword("or"), ws0).parse_next(i).is_err() {
            i.reset(&cp);
            return Ok(acc);
        }
        let rhs = and_expr(i, nested, b)?;
        acc = Filter::or(acc, rhs);
    }
}

/// `FILTER SP "and" SP FILTER`, left-associative, binds tighter than `or`.
fn and_expr(i: &mut In<'_>, nested: bool, b: &mut Budget) -> ModalResult<Filter> {
    let mut acc = unary(i, nested, b)?;
    loop {
        let cp = i.checkpoint();
        if (ws1, keyword("and"), ws0).parse_next(i).is_err() {
            i.reset(&cp);
            return Ok(acc);
        }
        let rhs = unary(i, nested, b)?;
        acc = Filter::and(acc, rhs);
    }
}

/// `"not" "(" FILTER ")"`, `"(" FILTER ")"` or an attribute expression.
fn unary(i: &mut In<'_>, nested: bool, b: &mut Budget) -> ModalResult<Filter> {
    let cp = i.checkpoint();
    if try_keyword(i, "not") {
        ws0(i)?;
        if char_lit(i, '(') {
            return Ok(Filter::Not(Box::new(group(i, nested, b)?)));
        }
        // An attribute called `not` (`not pr`): nothing in the grammar forbids one.
        i.reset(&cp);
    }
    if char_lit(i, '(') {
        return group(i, nested, b);
    }
    attr_exp(i, nested, b)
}

/// The rest of a parenthesised filter, after its `(`.
fn group(i: &mut In<'_>, nested: bool, b: &mut Budget) -> ModalResult<Filter> {
    b.depth += 1;
    if b.depth > MAX_DEPTH {
        return expected("at most 32 nested parentheses, `not`s and brackets");
    }
    ws0(i)?;
    let f = or_expr(i, nested, b)?;
    ws0(i)?;
    if !char_lit(i, ')') {
        return expected("`)`, `and` or `or`");
    }
    b.depth -= 1;
    Ok(f)
}

/// `attrPath SP "pr"`, `attrPath SP compareOp SP compValue` or `attrPath "[" valFilter "]"`.
fn attr_exp(i: &mut In<'_>, nested: bool, b: &mut Budget) -> ModalResult<Filter> {
    if i.is_empty() || i.starts_with(is_ws) {
        return expected("an attribute path, `(` or `not`");
    }
    let start = *i;
    let attr = attr_path(i)?;
    if i.starts_with('[') {
        if nested {
            // RFC 7644 §3.4.2.2: valFilter has no valuePath of its own.
            return expected("no `[` inside a value filter");
        }
        if attr.sub.is_some() {
            *i = start;
            return expected("a multi-valued attribute without a sub-attribute before `[`");
        }
        *i = &i[1..];
        let inner = bracket_body(i, b)?;
        if char_lit(i, '.') {
            // `emails[type eq "work"].value eq "x"`: the value that matches the brackets must
            // also match the comparison.
            let sub = attr_name(i)?;
            let tail = comparison(i, AttrPath::new(sub), b)?;
            return Ok(Filter::ValuePath(attr, Box::new(Filter::and(inner, tail))));
        }
        return Ok(Filter::ValuePath(attr, Box::new(inner)));
    }
    comparison(i, attr, b)
}

/// The value filter and `]` after a `[`.
fn bracket_body(i: &mut In<'_>, b: &mut Budget) -> ModalResult<Filter> {
    b.depth += 1;
    if b.depth > MAX_DEPTH {
        return expected("at most 32 nested parentheses, `not`s and brackets");
    }
    ws0(i)?;
    let inner = or_expr(i, true, b)?;
    ws0(i)?;
    if !char_lit(i, ']') {
        return expected("`]`, `and` or `or`");
    }
    b.depth -= 1;
    Ok(inner)
}

/// `SP "pr"` or `SP compareOp SP compValue` after an attribute path.
fn comparison(i: &mut In<'_>, attr: AttrPath, b: &mut Budget) -> ModalResult<Filter> {
    b.terms += 1;
    if b.terms > MAX_TERMS {
        return expected("at most 256 comparisons in one filter");
    }
    if ws1(i).is_err() {
        return expected("a space and an operator (eq ne co sw ew gt ge lt le pr)");
    }
    let cp = i.checkpoint();
    let word: ModalResult<&str> = take_while(1.., is_name_char).parse_next(i);
    let Ok(word) = word else {
        return expected("an operator (eq ne co sw ew gt ge lt le pr)");
    };
    if word.eq_ignore_ascii_case("pr") {
        return Ok(Filter::Present(attr));
    }
    let Some(op) = CompareOp::from_keyword(word) else {
        i.reset(&cp);
        return expected("an operator (eq ne co sw ew gt ge lt le pr)");
    };
    if ws1(i).is_err() {
        return expected("a space and a value");
    }
    let value = comp_value(i)?;
    Ok(Filter::Compare(attr, op, value))
}

/// `compValue = false / null / true / number / string`, the literals in any case (ABNF strings
/// are case-insensitive, RFC 5234 §2.3).
fn comp_value(i: &mut In<'_>) -> ModalResult<CompValue> {
    let s = *i;
    match s.chars().next() {
        Some('"') => json_string(i).map(CompValue::Str),
        Some(c) if c == '-' || c.is_ascii_digit() => {
            let len = s
                .find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')))
                .unwrap_or(s.len());
            match json_number(&s[..len]) {
                Some(n) => {
                    *i = &s[len..];
                    Ok(CompValue::Num(n))
                }
                None => expected("a JSON number (RFC 8259 §6) within the range of a double"),
            }
        }
        _ => {
            if try_keyword(i, "true") {
                Ok(CompValue::Bool(true))
            } else if try_keyword(i, "false") {
                Ok(CompValue::Bool(false))
            } else if try_keyword(i, "null") {
                Ok(CompValue::Null)
            } else {
                expected("a value: a JSON string, a number, true, false or null")
            }
        }
    }
}

/// A JSON number (RFC 8259 §6: `-? (0 / [1-9] *DIGIT) [. 1*DIGIT] [(e/E) [+/-] 1*DIGIT]`).
/// Integers become `i64`/`u64` numbers, the rest `f64` read by the standard library, which rounds
/// correctly (serde_json's own reader may be one unit in the last place off without its
/// `float_roundtrip` feature, and then a printed filter would not read back equal).
fn json_number(t: &str) -> Option<serde_json::Number> {
    let b = t.as_bytes();
    let mut k = usize::from(b.first() == Some(&b'-'));
    let digits = |k: &mut usize| {
        let start = *k;
        while b.get(*k).is_some_and(u8::is_ascii_digit) {
            *k += 1;
        }
        *k - start
    };
    let int_start = k;
    let n = digits(&mut k);
    if n == 0 || (n > 1 && b[int_start] == b'0') {
        return None;
    }
    let mut integral = true;
    if b.get(k) == Some(&b'.') {
        k += 1;
        if digits(&mut k) == 0 {
            return None;
        }
        integral = false;
    }
    if matches!(b.get(k), Some(b'e' | b'E')) {
        k += 1;
        if matches!(b.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        if digits(&mut k) == 0 {
            return None;
        }
        integral = false;
    }
    if k != b.len() {
        return None;
    }
    if integral {
        if let Ok(n) = t.parse::<u64>() {
            return Some(n.into());
        }
        if let Ok(n) = t.parse::<i64>() {
            return Some(n.into());
        }
    }
    t.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
}

/// A JSON string (RFC 8259 §7), escapes decoded by serde_json.
fn json_string(i: &mut In<'_>) -> ModalResult<String> {
    let s = *i;
    let bytes = s.as_bytes();
    let mut k = 1;
    loop {
        match bytes.get(k) {
            None => return expected("a string closed by `\"`"),
            Some(b'\\') => k += 2,
            Some(b'"') => break,
            Some(_) => k += 1,
        }
    }
    // `k` is at an ASCII `"`, so both slices fall on character boundaries.
    match serde_json::from_str::<String>(&s[..=k]) {
        Ok(v) => {
            *i = &s[k + 1..];
            Ok(v)
        }
        Err(_) => expected(
            "a JSON string (escapes as RFC 8259 §7 defines them, no raw control characters)",
        ),
    }
}

fn to_scim(text: &str, offset: usize, e: &ContextError, what: &str, t: ScimType) -> ScimError {
    let offset = offset.min(text.len());
    let pos = text[..offset].chars().count();
    let rest: String = text[offset..].chars().take(20).collect();
    let near = if rest.is_empty() {
        "at the end".to_owned()
    } else {
        format!("at {:?}", rest)
    };
    let expected: Vec<String> = e.context().map(ToString::to_string).collect();
    let expected = if expected.is_empty() {
        "unexpected text".to_owned()
    } else {
        expected.join(", ")
    };
    ScimError::bad_request(
        t,
        format!("invalid {what} at character {pos} ({near}): {expected}"),
    )
}

/// An attribute path alone (the `attributes` / `excludedAttributes` / `sortBy` parameters).
pub(crate) fn attr_path_text(text: &str) -> Result<AttrPath, ScimError> {
    let mut top = |i: &mut In<'_>| -> ModalResult<AttrPath> {
        let p = attr_path(i)?;
        if !i.is_empty() {
            return expected("the end of the attribute path");
        }
        Ok(p)
    };
    top.parse(text.trim()).map_err(|e| {
        to_scim(
            text.trim(),
            e.offset(),
            e.inner(),
            "attribute path",
            ScimType::InvalidValue,
        )
    })
}

pub(crate) fn filter_text(text: &str) -> Result<Filter, ScimError> {
    let mut b = Budget { depth: 0, terms: 0 };
    let mut top = |i: &mut In<'_>| -> ModalResult<Filter> {
        ws0(i)?;
        let f = or_expr(i, false, &mut b)?;
        ws0(i)?;
        if !i.is_empty() {
            return expected("`and`, `or` or the end of the filter");
        }
        Ok(f)
    };
    top.parse(text).map_err(|e| {
        to_scim(
            text,
            e.offset(),
            e.inner(),
            "filter",
            ScimType::InvalidFilter,
        )
    })
}

/// `PATH = attrPath / valuePath [subAttr]` (RFC 7644 §3.5.2): the attribute, the value filter and
/// the sub-attribute after `]`.
pub(crate) fn path_text(
    text: &str,
) -> Result<(AttrPath, Option<Filter>, Option<String>), ScimError> {
    let mut b = Budget { depth: 0, terms: 0 };
    let mut top = |i: &mut In<'_>| -> ModalResult<(AttrPath, Option<Filter>, Option<String>)> {
        let start = *i;
        let attr = attr_path(i)?;
        let mut filter = None;
        let mut sub = None;
        if i.starts_with('[') {
            if attr.sub.is_some() {
                *i = start;
                return expected("a multi-valued attribute without a sub-attribute before `[`");
            }
            *i = &i[1..];
            filter = Some(bracket_body(i, &mut b)?);
            sub = opt_sub_attr(i)?;
        }
        if !i.is_empty() {
            return expected("`[`, `.` or the end of the path");
        }
        Ok((attr, filter, sub))
    };
    top.parse(text)
        .map_err(|e| to_scim(text, e.offset(), e.inner(), "path", ScimType::InvalidPath))
}
