//! RFC 7644 §3.4.2 list responses.

use serde_json::{Map, Value, json};

use crate::schema::LIST_RESPONSE;

/// `{"schemas":[ListResponse],"totalResults":…,"startIndex":…,"itemsPerPage":…,"Resources":[…]}`.
/// `Resources` is always present, empty when nothing matched (Entra's "Test connection" filters on a
/// random GUID and expects exactly that).
pub fn list_response(resources: Vec<Value>, total_results: u64, start_index: u64) -> Value {
    // Built field by field rather than with `json!`, which would copy every resource through
    // `to_value` (a deep clone of the whole page).
    let mut out = Map::new();
    out.insert("schemas".into(), json!([LIST_RESPONSE]));
    out.insert("totalResults".into(), total_results.into());
    out.insert("startIndex".into(), start_index.max(1).into());
    out.insert("itemsPerPage".into(), resources.len().into());
    out.insert("Resources".into(), Value::Array(resources));
    Value::Object(out)
}

#[cfg(test)]
mod rfc7644_3_4_2_4_pagination {
    use super::*;

    #[test]
    fn an_empty_result_is_a_list_with_no_resources_and_zero_total() {
        let r = list_response(vec![], 0, 1);
        assert_eq!(
            r,
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": 0,
                "startIndex": 1,
                "itemsPerPage": 0,
                "Resources": [],
            })
        );
    }

    #[test]
    fn a_page_counts_its_items_and_keeps_the_total_and_start() {
        let r = list_response(vec![json!({"id": "a"}), json!({"id": "b"})], 10, 3);
        assert_eq!(r["totalResults"], 10);
        assert_eq!(r["startIndex"], 3);
        assert_eq!(r["itemsPerPage"], 2);
        assert_eq!(r["Resources"][1]["id"], "b");
    }

    #[test]
    fn a_start_index_below_one_is_answered_as_one() {
        // RFC 7644 §3.4.2.4: "A value less than 1 SHALL be interpreted as 1."
        assert_eq!(list_response(vec![], 0, 0)["startIndex"], 1);
    }
}
