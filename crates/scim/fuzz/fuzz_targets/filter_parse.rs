//! Any bytes as a filter and as a PATCH path: the parsers return (never panic), and whatever
//! parses prints to canonical text that parses back to the same tree.
#![no_main]

use behalf_scim::filter::{matches, parse_filter};
use behalf_scim::path::parse_path;
use behalf_scim::schema::ResourceKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = parse_filter(text) {
        let printed = f.to_string();
        assert_eq!(
            parse_filter(&printed).as_ref(),
            Ok(&f),
            "{text:?} printed as {printed:?}"
        );
        let _ = matches(
            &f,
            &serde_json::json!({"userName": "a", "emails": [{"value": "b"}]}),
            ResourceKind::User,
        );
    }
    if let Ok(p) = parse_path(text) {
        let printed = p.to_string();
        assert_eq!(
            parse_path(&printed).as_ref(),
            Ok(&p),
            "{text:?} printed as {printed:?}"
        );
    }
});
