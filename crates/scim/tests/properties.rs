//! Property tests of the filter parser, the PATCH path parser and the PATCH engine.
//!
//! Each property runs `PROPTEST_CASES` cases (proptest's default reads the variable; 256 when it is
//! unset, which keeps `cargo nextest run -p behalf-scim` to a few seconds). The million-input run
//! the README documents:
//!
//! ```text
//! PROPTEST_CASES=1000000 cargo test -p behalf-scim --release --test properties
//! ```

use behalf_scim::filter::{
    AttrPath, CompValue, CompareOp, Filter, MAX_TERMS, matches, parse_filter,
};
use behalf_scim::patch::{PatchRequest, apply};
use behalf_scim::path::{PatchPath, parse_path};
use behalf_scim::project::{project, project_default};
use behalf_scim::schema::{ENTERPRISE_USER, ResourceKind, USER};
use proptest::prelude::*;
use serde_json::{Map, Number, Value, json};

// ---------------------------------------------------------------------------------------------
// Generators.

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-zA-Z][a-zA-Z0-9_-]{0,7}",
        // Names that are also keywords, and `$ref`.
        1 => prop::sample::select(vec!["and", "or", "not", "pr", "eq", "true", "null", "NOT", "$ref"])
            .prop_map(str::to_owned),
        1 => prop::sample::select(vec!["userName", "emails", "value", "type", "members", "active", "name", "givenName"])
            .prop_map(str::to_owned),
    ]
}

fn urn() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "urn:[a-z0-9]{1,5}(:[a-zA-Z0-9.%+_-]{1,6}){0,4}",
        1 => Just(USER.to_owned()),
        1 => Just(ENTERPRISE_USER.to_owned()),
    ]
}

fn attr_path() -> impl Strategy<Value = AttrPath> {
    (
        prop::option::weighted(0.2, urn()),
        name(),
        prop::option::weighted(0.3, name()),
    )
        .prop_map(|(urn, name, sub)| AttrPath { urn, name, sub })
}

fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        any::<f64>().prop_filter_map("finite", Number::from_f64),
    ]
}

fn comp_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        4 => any::<String>().prop_map(CompValue::Str),
        2 => number().prop_map(CompValue::Num),
        1 => any::<bool>().prop_map(CompValue::Bool),
        1 => Just(CompValue::Null),
    ]
}

fn compare_op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(CompareOp::ALL.to_vec())
}

/// Filters with no value path (what may stand inside brackets).
fn flat_filter() -> impl Strategy<Value = Filter> {
    let leaf = prop_oneof![
        3 => (attr_path(), compare_op(), comp_value()).prop_map(|(a, o, v)| Filter::Compare(a, o, v)),
        1 => attr_path().prop_map(Filter::Present),
    ];
    leaf.prop_recursive(5, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::and(a, b)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::or(a, b)),
            inner.prop_map(Filter::negate),
        ]
    })
}

fn value_path() -> impl Strategy<Value = Filter> {
    ((prop::option::weighted(0.2, urn()), name()), flat_filter()).prop_map(|((urn, name), f)| {
        Filter::ValuePath(
            AttrPath {
                urn,
                name,
                sub: None,
            },
            Box::new(f),
        )
    })
}

fn filter() -> impl Strategy<Value = Filter> {
    let leaf = prop_oneof![
        3 => (attr_path(), compare_op(), comp_value()).prop_map(|(a, o, v)| Filter::Compare(a, o, v)),
        1 => attr_path().prop_map(Filter::Present),
        1 => value_path(),
    ];
    leaf.prop_recursive(5, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::and(a, b)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::or(a, b)),
            inner.prop_map(Filter::negate),
        ]
    })
}

fn patch_path() -> impl Strategy<Value = PatchPath> {
    prop_oneof![
        attr_path().prop_map(PatchPath::attr),
        (
            (prop::option::weighted(0.2, urn()), name()),
            flat_filter(),
            prop::option::of(name())
        )
            .prop_map(|((urn, name), f, sub)| PatchPath {
                attr: AttrPath {
                    urn,
                    name,
                    sub: None
                },
                filter: Some(f),
                sub,
            }),
    ]
}

/// Text that looks like filters: the grammar's tokens in any order, with any spacing.
fn token_soup() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "userName",
        "emails",
        "name.givenName",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "value",
        "type",
        "eq",
        "EQ",
        "ne",
        "co",
        "sw",
        "ew",
        "gt",
        "ge",
        "lt",
        "le",
        "pr",
        "Pr",
        "and",
        "AND",
        "or",
        "not",
        "(",
        ")",
        "[",
        "]",
        ".",
        "\"x\"",
        "\"wo\\\"rk\"",
        "\"\\u00e9\"",
        "\"",
        "1",
        "-2.5e3",
        "01",
        "true",
        "False",
        "null",
        "$ref",
        "urn:",
        ":",
    ]);
    let sep = prop::sample::select(vec!["", " ", " ", " ", "  ", "\t"]);
    prop::collection::vec((token, sep), 0..14).prop_map(|parts| {
        parts
            .into_iter()
            .map(|(t, s)| format!("{t}{s}"))
            .collect::<String>()
    })
}

/// A small deterministic choice stream for the noisy printer.
struct Noise(u64);

impl Noise {
    fn next(&mut self, n: u64) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }

    fn sp(&mut self) -> &'static str {
        ["  ", "\t", " \n ", " "][self.next(8).min(3) as usize]
    }

    fn opt_sp(&mut self) -> &'static str {
        ["", " ", "\t", ""][self.next(4) as usize]
    }

    fn case(&mut self, word: &str) -> String {
        match self.next(3) {
            0 => word.to_owned(),
            1 => word.to_uppercase(),
            _ => {
                let mut c = word.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect())
                    .unwrap_or_default()
            }
        }
    }
}

/// Prints a filter the way a careless client might: keywords, operators and literals in any case,
/// any whitespace, extra parentheses. Must parse to the same tree.
fn noisy(f: &Filter, n: &mut Noise, depth: u32, out: &mut String) {
    let extra = depth < 8 && n.next(6) == 0;
    if extra {
        out.push('(');
        out.push_str(n.opt_sp());
    }
    let need = |child: &Filter, min: u8| -> bool {
        let p = match child {
            Filter::Or(..) => 1,
            Filter::And(..) => 2,
            _ => 3,
        };
        p < min
    };
    let group = |child: &Filter, min: u8, n: &mut Noise, out: &mut String| {
        if need(child, min) {
            out.push('(');
            out.push_str(n.opt_sp());
            noisy(child, n, depth + 1, out);
            out.push_str(n.opt_sp());
            out.push(')');
        } else {
            noisy(child, n, depth + 1, out);
        }
    };
    match f {
        Filter::Compare(a, op, v) => {
            out.push_str(&a.to_string());
            out.push_str(n.sp());
            out.push_str(&n.case(op.as_str()));
            out.push_str(n.sp());
            match v {
                CompValue::Bool(b) => out.push_str(&n.case(&b.to_string())),
                CompValue::Null => out.push_str(&n.case("null")),
                other => out.push_str(&other.to_string()),
            }
        }
        Filter::Present(a) => {
            out.push_str(&a.to_string());
            out.push_str(n.sp());
            out.push_str(&n.case("pr"));
        }
        Filter::And(l, r) => {
            group(l, 2, n, out);
            out.push_str(n.sp());
            out.push_str(&n.case("and"));
            out.push_str(n.sp());
            group(r, 3, n, out);
        }
        Filter::Or(l, r) => {
            group(l, 1, n, out);
            out.push_str(n.sp());
            out.push_str(&n.case("or"));
            out.push_str(n.sp());
            group(r, 2, n, out);
        }
        Filter::Not(inner) => {
            out.push_str(&n.case("not"));
            out.push_str(n.opt_sp());
            out.push('(');
            out.push_str(n.opt_sp());
            noisy(inner, n, depth + 1, out);
            out.push_str(n.opt_sp());
            out.push(')');
        }
        Filter::ValuePath(a, inner) => {
            out.push_str(&a.to_string());
            out.push('[');
            out.push_str(n.opt_sp());
            noisy(inner, n, depth + 1, out);
            out.push_str(n.opt_sp());
            out.push(']');
        }
    }
    if extra {
        out.push_str(n.opt_sp());
        out.push(')');
    }
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec![
            "userName", "displayName", "name", "givenName", "familyName", "emails", "value", "type", "primary",
            "active", "members", "display", "$ref", "externalId", "id", "meta", "schemas", "title", "groups",
            "phoneNumbers", "addresses", "manager", "department", "employeeNumber", "nickName", "password",
            ENTERPRISE_USER, "name.givenName", "emails[type eq \"work\"].value", "x509Certificates",
        ])
        .prop_map(str::to_owned),
        1 => "[a-zA-Z$.\\[\\]\" ]{0,10}",
    ]
}

fn json_leaf(nulls: bool) -> BoxedStrategy<Value> {
    let base = prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter_map("finite", Number::from_f64)
            .prop_map(Value::Number),
        prop::sample::select(vec![
            "work",
            "home",
            "True",
            "False",
            "x@example.com",
            "",
            "2026-12-01T12:00:00Z"
        ])
        .prop_map(|s| Value::String(s.to_owned())),
        any::<String>().prop_map(Value::String),
    ];
    if nulls {
        prop_oneof![1 => Just(Value::Null), 6 => base].boxed()
    } else {
        base.boxed()
    }
}

fn json_value(nulls: bool) -> impl Strategy<Value = Value> {
    json_leaf(nulls).prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

fn resource(nulls: bool) -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), json_value(nulls)), 0..8).prop_map(|kv| {
        let mut m: Map<String, Value> = kv.into_iter().collect();
        m.insert("schemas".to_owned(), json!([USER]));
        Value::Object(m)
    })
}

fn path_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => patch_path().prop_map(|p| p.to_string()),
        2 => prop::sample::select(vec![
            "members", "members[value eq \"a\"]", "emails[type eq \"work\"].value", "name.givenName", "active",
            "userName", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "addresses[type eq \"home\"]",
            "emails", "emails.value", "groups", "id", "meta.created", "phoneNumbers[type eq \"mobile\"].value",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn operation() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![
            "add", "Add", "replace", "Replace", "REMOVE", "remove", "move",
        ]),
        prop::option::weighted(0.8, path_text()),
        prop::option::weighted(0.8, json_value(true)),
    )
        .prop_map(|(op, path, value)| {
            let mut o = Map::new();
            o.insert("op".to_owned(), json!(op));
            if let Some(p) = path {
                o.insert("path".to_owned(), json!(p));
            }
            if let Some(v) = value {
                o.insert("value".to_owned(), v);
            }
            Value::Object(o)
        })
}

fn body(ops: Vec<Value>) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

/// Comparisons and `pr`s in a tree: the parser refuses more than [`MAX_TERMS`].
fn terms(f: &Filter) -> u32 {
    match f {
        Filter::Compare(..) | Filter::Present(..) => 1,
        Filter::And(a, b) | Filter::Or(a, b) => terms(a) + terms(b),
        Filter::Not(a) | Filter::ValuePath(_, a) => terms(a),
    }
}

/// Round trip within the limits; beyond them, a clean `invalidFilter`.
fn reads_back(text: &str, f: &Filter) -> Result<(), TestCaseError> {
    let parsed = parse_filter(text);
    if terms(f) > MAX_TERMS {
        let e = parsed.expect_err("a filter past MAX_TERMS parses");
        prop_assert!(e.detail.contains("at most"), "{}", e.detail);
    } else {
        prop_assert_eq!(parsed.as_ref(), Ok(f), "text: {:?}", text);
    }
    Ok(())
}

fn has_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.iter().any(has_null),
        Value::Object(o) => o.values().any(has_null),
        _ => false,
    }
}

fn kind() -> impl Strategy<Value = ResourceKind> {
    prop_oneof![Just(ResourceKind::User), Just(ResourceKind::Group)]
}

// ---------------------------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(ProptestConfig { max_shrink_iters: 10_000, ..ProptestConfig::default() })]

    /// The parser returns (never panics) on any text.
    #[test]
    fn filter_parser_never_panics_on_any_string(text in any::<String>()) {
        let _ = parse_filter(&text);
        let _ = parse_path(&text);
    }

    /// Text that parses prints canonically and reads back to the same tree, and printing is a
    /// fixed point.
    #[test]
    fn text_that_parses_prints_and_reparses_equal(text in token_soup()) {
        if let Ok(f) = parse_filter(&text) {
            let printed = f.to_string();
            let again = parse_filter(&printed);
            prop_assert_eq!(again.as_ref(), Ok(&f), "{:?} printed as {:?}", text, printed);
            prop_assert_eq!(again.map(|g| g.to_string()).ok(), Some(printed));
        } else if let Err(e) = parse_filter(&text) {
            prop_assert_eq!(e.status, 400);
            prop_assert!(e.detail.contains("at character"), "{}", e.detail);
        }
    }

    /// Valid filters with one character inserted, deleted or replaced (inside a string, the
    /// mutation usually still parses; elsewhere it usually does not): whatever parses prints and
    /// reads back equal; whatever does not is a 400 naming a position within the text.
    #[test]
    fn mutated_text_round_trips_or_fails_cleanly(
        f in filter(),
        seed in any::<u64>(),
        at in any::<prop::sample::Index>(),
        c in prop::sample::select(vec![' ', '(', ')', '[', ']', '"', '\\', '.', ':', 'a', '1', '-', 'é', '\u{0}']),
        mode in 0u8..3,
    ) {
        let mut text = String::new();
        noisy(&f, &mut Noise(seed | 1), 0, &mut text);
        let mut chars: Vec<char> = text.chars().collect();
        let i = at.index(chars.len() + 1);
        match mode {
            0 => chars.insert(i, c),
            1 if i < chars.len() => { chars.remove(i); }
            _ if i < chars.len() => chars[i] = c,
            _ => chars.push(c),
        }
        let text: String = chars.into_iter().collect();
        match parse_filter(&text) {
            Ok(g) => {
                let printed = g.to_string();
                prop_assert_eq!(parse_filter(&printed), Ok(g), "{:?} printed as {:?}", text, printed);
            }
            Err(e) => {
                prop_assert_eq!(e.status, 400);
                let at: usize = e
                    .detail
                    .split("at character ")
                    .nth(1)
                    .and_then(|r| r.split(' ').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(usize::MAX);
                prop_assert!(at <= text.chars().count(), "{} for {:?}", e.detail, text);
            }
        }
    }

    /// Generated trees print and parse back to themselves.
    #[test]
    fn filter_ast_print_parse_round_trip(f in filter()) {
        reads_back(&f.to_string(), &f)?;
    }

    /// The same trees written with any case, spacing and extra parentheses still parse to
    /// themselves.
    #[test]
    fn filter_ast_noisy_print_parse_round_trip(f in filter(), seed in any::<u64>()) {
        let mut text = String::new();
        noisy(&f, &mut Noise(seed | 1), 0, &mut text);
        reads_back(&text, &f)?;
    }

    /// Generated PATCH paths print and parse back to themselves.
    #[test]
    fn patch_path_print_parse_round_trip(p in patch_path()) {
        let printed = p.to_string();
        prop_assert_eq!(parse_path(&printed), Ok(p), "printed: {}", printed);
    }

    /// The usual answer's projection, done in place, is the general one's (an extension's
    /// value of any shape included).
    #[test]
    fn the_default_projection_in_place_answers_as_project_does(
        r in prop_oneof![resource(true), json_value(true)],
        ext in prop::option::of(json_value(true)),
        k in kind(),
    ) {
        let mut r = r;
        if let (Some(ext), Some(obj)) = (ext, r.as_object_mut()) {
            obj.insert(ENTERPRISE_USER.to_owned(), ext);
        }
        prop_assert_eq!(project_default(r.clone(), k), project(&r, k, &[], &[]));
    }

    /// Matching never panics, whatever the filter and the resource.
    #[test]
    fn matching_never_panics(f in filter(), r in json_value(true), k in kind()) {
        let _ = matches(&f, &r, k);
    }

    /// Any JSON body: reading it never panics; errors are 400s.
    #[test]
    fn patch_request_never_panics_on_any_json(v in json_value(true), ops in prop::collection::vec(json_value(true), 0..4)) {
        if let Err(e) = PatchRequest::from_value(&v) {
            prop_assert_eq!(e.status, 400);
        }
        let mut b = body(ops);
        let _ = PatchRequest::from_value(&b);
        b["Operations"] = v;
        let _ = PatchRequest::from_value(&b);
    }

    /// The engine never panics; a failed PATCH leaves the resource exactly as it was, a successful
    /// one leaves an object; errors are 400s with a scimType.
    #[test]
    fn patch_apply_never_panics_and_is_all_or_nothing(
        r in resource(true),
        ops in prop::collection::vec(operation(), 1..5),
        k in kind(),
    ) {
        let Ok(req) = PatchRequest::from_value(&body(ops)) else { return Ok(()); };
        let mut after = r.clone();
        match apply(&mut after, &req.operations, k) {
            Ok(()) => prop_assert!(after.is_object()),
            Err(e) => {
                prop_assert_eq!(&after, &r, "a failed PATCH changed the resource: {}", e);
                prop_assert!(e.status == 400 || e.status == 500, "{}", e);
                if e.status == 400 {
                    prop_assert!(e.scim_type.is_some(), "{}", e);
                }
            }
        }
    }

    /// What the engine writes has no nulls (RFC 7643 §2.5; Entra expects them omitted).
    #[test]
    fn patch_apply_writes_no_nulls(
        r in resource(false),
        ops in prop::collection::vec(operation(), 1..5),
        k in kind(),
    ) {
        let Ok(req) = PatchRequest::from_value(&body(ops)) else { return Ok(()); };
        let mut after = r;
        if apply(&mut after, &req.operations, k).is_ok() {
            prop_assert!(!has_null(&after), "null in {}", after);
        }
    }

    /// Adding the same values twice is adding them once.
    #[test]
    fn patch_add_is_idempotent(r in resource(false), ops in prop::collection::vec(operation(), 1..3), k in kind()) {
        let Ok(req) = PatchRequest::from_value(&body(ops)) else { return Ok(()); };
        let adds: Vec<_> = req
            .operations
            .into_iter()
            .filter(|o| o.op == behalf_scim::patch::PatchOpKind::Add)
            .collect();
        let mut once = r;
        if apply(&mut once, &adds, k).is_ok() {
            let mut twice = once.clone();
            if apply(&mut twice, &adds, k).is_ok() {
                prop_assert_eq!(twice, once);
            }
        }
    }
}
