//! `/scim/v2` over real HTTP, organised by RFC 7644 section, with Microsoft Entra ID's request
//! shapes in `mod entra`. Filters and uniqueness also run on PostgreSQL.

mod common;

use behalf_app::Caller;
use behalf_domain::{EventAction, Lifecycle};
use common::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A server and a SCIM client of one connection.
struct Scim {
    server: TestServer,
    token: String,
    http: reqwest::Client,
}

async fn token(server: &TestServer, connection: &str) -> String {
    let local = Caller::Local {
        actor: "test".into(),
    };
    server
        .app
        .operator(&local)
        .unwrap()
        .create_scim_token(connection, None)
        .await
        .unwrap()
        .token
        .expose()
        .to_owned()
}

impl Scim {
    async fn start() -> Scim {
        Self::on(TestServer::start().await).await
    }

    /// On PostgreSQL, when `BEHALF_TEST_POSTGRES` is set (`.ci/run` sets it); else None, said.
    async fn start_postgres() -> Option<(Scim, behalf_store::testing::TestStore)> {
        let db = behalf_store::testing::postgres().await?;
        let url = db.url();
        let server = TestServer::start_with(move |_, f| {
            f.merge(figment::providers::Serialized::default("database_url", url))
        })
        .await;
        Some((Self::on(server).await, db))
    }

    async fn on(server: TestServer) -> Scim {
        let token = token(&server, "entra").await;
        Scim {
            server,
            token,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(&format!("/scim/v2{path}"))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut r = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let answer = r.send().await.unwrap();
        let status = answer.status();
        let h = answer.headers().clone();
        let text = answer.text().await.unwrap();
        if !text.is_empty() {
            assert!(
                h["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("application/scim+json"),
                "{path}: {:?}",
                h.get("content-type")
            );
            assert!(!text.contains("null"), "{path}: no nulls in output: {text}");
        }
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, h, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, _, b) = self.send(reqwest::Method::GET, path, None, &[]).await;
        (s, b)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, b) = self
            .send(reqwest::Method::POST, path, Some(body), &[])
            .await;
        (s, b)
    }

    async fn patch(&self, path: &str, ops: Value) -> (StatusCode, Value) {
        let (s, _, b) = self
            .send(
                reqwest::Method::PATCH,
                path,
                Some(json!({"schemas": [PATCH], "Operations": ops})),
                &[],
            )
            .await;
        (s, b)
    }

    async fn user(&self, user_name: &str) -> Value {
        let (s, b) = self
            .post(
                "/Users",
                json!({
                    "schemas": [USER, ENTERPRISE],
                    "userName": user_name,
                    "externalId": format!("ext-{user_name}"),
                    "displayName": user_name.split('@').next().unwrap(),
                    "active": true,
                    "emails": [{"value": user_name, "type": "work", "primary": true}],
                    ENTERPRISE: {"department": "Sales"},
                }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b
    }

    async fn list(&self, query: &str) -> Vec<String> {
        let (s, b) = self.get(&format!("/Users?{query}")).await;
        assert_eq!(s, StatusCode::OK, "{query}: {b}");
        b["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["userName"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn enc(filter: &str) -> String {
    url::form_urlencoded::byte_serialize(filter.as_bytes()).collect()
}

mod rfc7644_3_3_creating {
    use super::*;

    #[tokio::test]
    async fn a_created_user_comes_back_with_id_meta_and_etag() {
        let c = Scim::start().await;
        let (s, h, b) = c
            .send(reqwest::Method::POST, "/Users", Some(json!({"schemas": [USER], "userName": "ann@contoso.com", "password": "hunter2!!", "id": "mine", "name": {"givenName": "Ann", "familyName": null}})), &[])
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let id = b["id"].as_str().unwrap();
        assert_ne!(id, "mine", "id is the server's (readOnly)");
        assert_eq!(b["meta"]["resourceType"], "User");
        assert_eq!(h["etag"], b["meta"]["version"].as_str().unwrap());
        assert_eq!(
            h["location"].to_str().unwrap(),
            b["meta"]["location"].as_str().unwrap()
        );
        assert!(
            b["meta"]["location"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/scim/v2/Users/{id}"))
        );
        assert_eq!(b["active"], true);
        assert_eq!(b["name"], json!({"givenName": "Ann"}));
        assert!(
            b.get("password").is_none(),
            "password is never returned: {b}"
        );
        let (s, got) = c.get(&format!("/Users/{id}")).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(got, b);
        c.server.stop().await;
    }

    #[tokio::test]
    async fn a_taken_user_name_is_409_uniqueness_whatever_its_case() {
        let c = Scim::start().await;
        c.user("ann@contoso.com").await;
        let (s, b) = c
            .post(
                "/Users",
                json!({"schemas": [USER], "userName": "ANN@contoso.com"}),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert_eq!(b["scimType"], "uniqueness");
        assert_eq!(b["status"], "409");
        assert_eq!(b["schemas"], json!([ERROR]));
        c.server.stop().await;
    }

    #[tokio::test]
    async fn a_user_name_that_is_not_a_upn_is_refused_naming_it() {
        let c = Scim::start().await;
        let (s, b) = c
            .post(
                "/Users",
                json!({"schemas": [USER], "userName": "no at sign"}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(b["scimType"], "invalidValue");
        assert!(b["detail"].as_str().unwrap().contains("userName"), "{b}");
        c.server.stop().await;
    }
}

mod rfc7644_3_4_2_2_filtering {
    use super::*;

    async fn filters(c: &Scim) {
        for u in ["ann@contoso.com", "bob@contoso.com", "cy@fabrikam.com"] {
            c.user(u).await;
        }
        assert_eq!(
            c.list(&format!(
                "filter={}",
                enc("userName eq \"BOB@contoso.com\"")
            ))
            .await,
            ["bob@contoso.com"]
        );
        assert_eq!(
            c.list(&format!(
                "filter={}&sortBy=userName",
                enc("userName ew \"contoso.com\"")
            ))
            .await,
            ["ann@contoso.com", "bob@contoso.com"]
        );
        assert_eq!(
            c.list(&format!(
                "filter={}&sortBy=userName&sortOrder=descending",
                enc("not (userName sw \"bob\") and active eq true")
            ))
            .await,
            ["cy@fabrikam.com", "ann@contoso.com"]
        );
        assert_eq!(
            c.list(&format!(
                "filter={}",
                enc("emails[type eq \"work\" and value co \"fabrikam\"]")
            ))
            .await,
            ["cy@fabrikam.com"]
        );
        assert_eq!(
            c.list(&format!(
                "filter={}",
                enc("externalId eq \"ext-ann@contoso.com\" or displayName eq \"CY\"")
            ))
            .await
            .len(),
            2
        );
        assert_eq!(
            c.list(&format!(
                "filter={}",
                enc("meta.created gt \"2000-01-01T00:00:00Z\" and displayName pr")
            ))
            .await
            .len(),
            3
        );
        // No column: refused naming it, not scanned.
        let (s, b) = c
            .get(&format!("/Users?filter={}", enc("title eq \"boss\"")))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(b["scimType"], "invalidFilter");
        assert!(b["detail"].as_str().unwrap().contains("title"), "{b}");
        let (s, b) = c
            .get(&format!("/Users?filter={}", enc("userName eq")))
            .await;
        assert_eq!(
            (s, b["scimType"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalidFilter"))
        );
    }

    #[tokio::test]
    async fn operators_and_value_paths_become_sql_on_sqlite() {
        let c = Scim::start().await;
        filters(&c).await;
        c.server.stop().await;
    }

    #[tokio::test]
    async fn operators_and_value_paths_become_sql_on_postgres() {
        let Some((c, _db)) = Scim::start_postgres().await else {
            return;
        };
        filters(&c).await;
        let (s, b) = c
            .post(
                "/Users",
                json!({"schemas": [USER], "userName": "Ann@Contoso.com"}),
            )
            .await;
        assert_eq!(
            (s, b["scimType"].as_str()),
            (StatusCode::CONFLICT, Some("uniqueness"))
        );
        c.server.stop().await;
    }
}

mod rfc7644_3_4_2_4_pagination {
    use super::*;

    #[tokio::test]
    async fn start_index_and_count_page_a_sorted_list() {
        let c = Scim::start().await;
        for u in ["a@x.com", "b@x.com", "c@x.com"] {
            c.user(u).await;
        }
        let (_, b) = c.get("/Users?sortBy=userName&startIndex=2&count=1").await;
        assert_eq!(
            (
                b["totalResults"].as_u64(),
                b["startIndex"].as_u64(),
                b["itemsPerPage"].as_u64()
            ),
            (Some(3), Some(2), Some(1))
        );
        assert_eq!(b["Resources"][0]["userName"], "b@x.com");
        let (_, b) = c.get("/Users?count=0").await;
        assert_eq!(
            (
                b["totalResults"].as_u64(),
                b["Resources"].as_array().unwrap().len()
            ),
            (Some(3), 0)
        );
        let (_, spc) = c.get("/ServiceProviderConfig").await;
        assert!(
            spc["filter"]["maxResults"].as_u64().unwrap() >= 100,
            "{spc}"
        );
        c.server.stop().await;
    }
}

mod rfc7644_3_4_2_5_attributes {
    use super::*;

    #[tokio::test]
    async fn attributes_and_excluded_attributes_shape_the_answer() {
        let c = Scim::start().await;
        let id = c.user("ann@contoso.com").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (_, b) = c.get(&format!("/Users/{id}?attributes=userName")).await;
        assert_eq!(b["userName"], "ann@contoso.com");
        assert!(b.get("emails").is_none() && b.get("id").is_some(), "{b}");
        let (_, b) = c
            .get(&format!("/Users/{id}?excludedAttributes=emails"))
            .await;
        assert!(
            b.get("emails").is_none() && b.get("displayName").is_some(),
            "{b}"
        );
        c.server.stop().await;
    }
}

mod rfc7644_3_4_3_search {
    use super::*;

    #[tokio::test]
    async fn post_search_takes_the_query_in_the_body() {
        let c = Scim::start().await;
        c.user("ann@contoso.com").await;
        c.user("bob@contoso.com").await;
        let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName sw \"b\"", "attributes": ["userName"]});
        let (s, b) = c.post("/Users/.search", search.clone()).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["totalResults"], 1);
        let (s, b) = c.post("/.search", search).await;
        assert_eq!(
            (s, b["totalResults"].as_u64()),
            (StatusCode::OK, Some(1)),
            "{b}"
        );
        c.server.stop().await;
    }
}

mod rfc7644_3_5_1_replacing {
    use super::*;

    #[tokio::test]
    async fn put_replaces_the_resource() {
        let c = Scim::start().await;
        let id = c.user("ann@contoso.com").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (s, _, b) = c
            .send(
                reqwest::Method::PUT,
                &format!("/Users/{id}"),
                Some(
                    json!({"schemas": [USER], "userName": "ann.lee@contoso.com", "title": "Boss"}),
                ),
                &[],
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(
            (b["userName"].as_str(), b["title"].as_str()),
            (Some("ann.lee@contoso.com"), Some("Boss"))
        );
        assert!(b.get("emails").is_none(), "{b}");
        assert_eq!(b["meta"]["version"], "W/\"2\"");
        c.server.stop().await;
    }
}

mod rfc7644_3_5_2_modifying_with_patch {
    use super::*;

    #[tokio::test]
    async fn add_replace_and_remove_with_and_without_paths() {
        let c = Scim::start().await;
        let id = c.user("ann@contoso.com").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (s, b) = c
            .patch(&format!("/Users/{id}"), json!([
                {"op": "add", "path": "emails", "value": [{"value": "ann@home.example", "type": "home"}]},
                {"op": "replace", "path": "name.familyName", "value": "Lee"},
                {"op": "remove", "path": "emails[type eq \"work\"]"},
                {"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "Support"},
            ]))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(
            b["emails"],
            json!([{"value": "ann@home.example", "type": "home"}])
        );
        assert_eq!(b["name"]["familyName"], "Lee");
        assert_eq!(b[ENTERPRISE]["department"], "Support");
        // The filter sees the PATCHed emails (columns rewritten with the resource).
        assert_eq!(
            c.list(&format!(
                "filter={}",
                enc("emails.value eq \"ann@home.example\"")
            ))
            .await,
            ["ann@contoso.com"]
        );
        assert!(
            c.list(&format!("filter={}", enc("emails.type eq \"work\"")))
                .await
                .is_empty()
        );
        let (s, b) = c
            .patch(
                &format!("/Users/{id}"),
                json!([{"op": "replace", "path": "id", "value": "x"}]),
            )
            .await;
        assert_eq!(
            (s, b["scimType"].as_str()),
            (StatusCode::BAD_REQUEST, Some("mutability")),
            "{b}"
        );
        c.server.stop().await;
    }
}

mod rfc7644_3_6_deleting {
    use super::*;

    #[tokio::test]
    async fn a_deleted_user_is_404_and_marked_for_deprovisioning_with_an_event() {
        let c = Scim::start().await;
        let id = c.user("ann@contoso.com").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (s, _, _) = c
            .send(reqwest::Method::DELETE, &format!("/Users/{id}"), None, &[])
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_eq!(
            c.get(&format!("/Users/{id}")).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            c.send(reqwest::Method::DELETE, &format!("/Users/{id}"), None, &[])
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        let store = c.server.app.store();
        let ws = c.server.app.workspace().id;
        let pending = store.users_pending_deprovision(ws).await.unwrap();
        assert_eq!(
            pending.iter().map(|u| u.id.to_string()).collect::<Vec<_>>(),
            [id.as_str()]
        );
        assert!(!pending[0].enabled);
        let events = store.list_events(ws, &Default::default()).await.unwrap();
        let actions: Vec<_> = events
            .iter()
            .filter(|e| e.user_id.map(|u| u.to_string()) == Some(id.clone()))
            .map(|e| e.action)
            .collect();
        assert_eq!(
            actions,
            [EventAction::ScimUserCreated, EventAction::ScimUserDeleted]
        );
        assert!(
            events
                .iter()
                .all(|e| e.action != EventAction::ScimUserDeleted || e.actor == "scim:entra")
        );
        c.server.stop().await;
    }
}

mod rfc7644_3_12_errors {
    use super::*;

    #[tokio::test]
    async fn without_a_valid_token_the_answer_is_401_with_no_detail() {
        let c = Scim::start().await;
        for auth in [
            None,
            Some("Bearer bhscim_not-a-token"),
            Some("Bearer bht_api-token"),
            Some("Basic eDp5"),
        ] {
            let mut r = c.http.get(c.url("/Users"));
            if let Some(a) = auth {
                r = r.header("authorization", a);
            }
            let answer = r.send().await.unwrap();
            assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
            assert!(
                answer.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer")
            );
            let body: Value = answer.json().await.unwrap();
            assert!(body.get("detail").is_none(), "{body}");
        }
        c.server.stop().await;
    }

    #[tokio::test]
    async fn errors_are_scim_error_bodies_with_their_scim_type() {
        let c = Scim::start().await;
        let (s, b) = c.get("/Users/not-an-id").await;
        assert_eq!(
            (s, b["status"].as_str()),
            (StatusCode::NOT_FOUND, Some("404"))
        );
        let (s, b) = c.post("/Users", json!(["not", "an", "object"])).await;
        assert_eq!(
            (s, b["scimType"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalidSyntax"))
        );
        let answer = c
            .http
            .post(c.url("/Users"))
            .bearer_auth(&c.token)
            .body("{oops")
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
        let (s, b) = c
            .patch(
                "/Users/0190c7a0-0000-7000-8000-000000000000",
                json!([{"op": "explode"}]),
            )
            .await;
        assert_eq!(
            (s, b["scimType"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalidSyntax")),
            "{b}"
        );
        c.server.stop().await;
    }

    #[tokio::test]
    async fn a_token_sees_nothing_of_another_connection() {
        let c = Scim::start().await;
        let ann = c.user("ann@contoso.com").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let other = Scim {
            token: token(&c.server, "okta").await,
            http: reqwest::Client::new(),
            server: c.server,
        };
        assert_eq!(other.list("").await, Vec::<String>::new());
        assert_eq!(
            other
                .list(&format!(
                    "filter={}",
                    enc("userName eq \"ann@contoso.com\"")
                ))
                .await,
            Vec::<String>::new()
        );
        assert_eq!(
            other.get(&format!("/Users/{ann}")).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            other
                .patch(
                    &format!("/Users/{ann}"),
                    json!([{"op": "replace", "path": "active", "value": false}])
                )
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            other
                .send(reqwest::Method::DELETE, &format!("/Users/{ann}"), None, &[])
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        let (s, b) = other
            .post(
                "/Groups",
                json!({"schemas": [GROUP], "displayName": "G", "members": [{"value": ann}]}),
            )
            .await;
        assert_eq!(
            (s, b["scimType"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalidValue")),
            "{b}"
        );
        other.server.stop().await;
    }

    #[tokio::test]
    async fn a_revoked_token_is_refused_at_once() {
        let c = Scim::start().await;
        assert_eq!(c.get("/Users").await.0, StatusCode::OK);
        let local = Caller::Local {
            actor: "test".into(),
        };
        let op = c.server.app.operator(&local).unwrap();
        let id = op.list_scim_tokens().await.unwrap()[0].id;
        op.revoke_scim_token(id).await.unwrap();
        assert_eq!(c.get("/Users").await.0, StatusCode::UNAUTHORIZED);
        c.server.stop().await;
    }
}

mod rfc7644_3_14_versioning {
    use super::*;

    #[tokio::test]
    async fn if_match_and_if_none_match() {
        let c = Scim::start().await;
        let id = c.user("ann@contoso.com").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = format!("/Users/{id}");
        let (s, _, _) = c
            .send(
                reqwest::Method::GET,
                &path,
                None,
                &[("if-none-match", "W/\"1\"")],
            )
            .await;
        assert_eq!(s, StatusCode::NOT_MODIFIED);
        let ops = json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": "A"}]});
        let (s, _, b) = c
            .send(
                reqwest::Method::PATCH,
                &path,
                Some(ops.clone()),
                &[("if-match", "W/\"7\"")],
            )
            .await;
        assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{b}");
        let (s, h, _) = c
            .send(
                reqwest::Method::PATCH,
                &path,
                Some(ops),
                &[("if-match", "W/\"1\"")],
            )
            .await;
        assert_eq!(
            (s, h["etag"].to_str().unwrap()),
            (StatusCode::OK, "W/\"2\"")
        );
        let (s, _, _) = c
            .send(
                reqwest::Method::GET,
                &path,
                None,
                &[("if-none-match", "W/\"1\"")],
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _, _) = c
            .send(
                reqwest::Method::DELETE,
                &path,
                None,
                &[("if-match", "W/\"1\"")],
            )
            .await;
        assert_eq!(s, StatusCode::PRECONDITION_FAILED);
        c.server.stop().await;
    }
}

mod rfc7644_4_discovery {
    use super::*;

    #[tokio::test]
    async fn service_provider_config_resource_types_and_schemas() {
        let c = Scim::start().await;
        let (s, b) = c.get("/ServiceProviderConfig").await;
        assert_eq!(
            (
                s,
                b["patch"]["supported"].as_bool(),
                b["etag"]["supported"].as_bool()
            ),
            (StatusCode::OK, Some(true), Some(true))
        );
        let (_, b) = c.get("/ResourceTypes").await;
        assert_eq!(b["totalResults"], 2);
        assert_eq!(c.get("/ResourceTypes/User").await.0, StatusCode::OK);
        let (_, b) = c.get("/Schemas").await;
        let ids: Vec<_> = b["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert!(
            ids.contains(&USER) && ids.contains(&ENTERPRISE) && ids.contains(&GROUP),
            "{ids:?}"
        );
        assert_eq!(c.get(&format!("/Schemas/{USER}")).await.0, StatusCode::OK);
        assert_eq!(c.get("/Schemas/urn:nope").await.0, StatusCode::NOT_FOUND);
        c.server.stop().await;
    }
}

/// Microsoft Entra ID's provisioning client, as Microsoft documents it
/// (learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups).
mod entra {
    use super::*;

    #[tokio::test]
    async fn test_connection_filters_on_a_random_guid_and_gets_an_empty_list() {
        let c = Scim::start().await;
        let guid = uuid::Uuid::new_v4();
        let (s, b) = c
            .get(&format!(
                "/Users?filter={}",
                enc(&format!("userName eq \"{guid}\""))
            ))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(
            b,
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []})
        );
        c.server.stop().await;
    }

    #[tokio::test]
    async fn disable_as_the_string_false_with_a_capitalised_replace_then_reactivate() {
        let c = Scim::start().await;
        let id = c.user("ann@contoso.com").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (s, b) = c
            .patch(
                &format!("/Users/{id}"),
                json!([{"op": "Replace", "path": "active", "value": "False"}]),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["active"], false);
        // A soft-deleted user is still returned.
        let (s, b) = c.get(&format!("/Users/{id}")).await;
        assert_eq!((s, b["active"].as_bool()), (StatusCode::OK, Some(false)));
        assert_eq!(
            c.list(&format!(
                "filter={}",
                enc("userName eq \"ann@contoso.com\"")
            ))
            .await,
            ["ann@contoso.com"]
        );
        let app = &c.server.app;
        let user = app.store().get_user(id.parse().unwrap()).await.unwrap();
        assert_eq!(
            (user.enabled, user.lifecycle),
            (false, Lifecycle::DeprovisionPending)
        );
        let (s, _) = c
            .patch(
                &format!("/Users/{id}"),
                json!([{"op": "Replace", "path": "active", "value": "True"}]),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let user = app.store().get_user(id.parse().unwrap()).await.unwrap();
        assert_eq!((user.enabled, user.lifecycle), (true, Lifecycle::Active));
        let events = app
            .store()
            .list_events(app.workspace().id, &Default::default())
            .await
            .unwrap();
        let actions: Vec<_> = events
            .iter()
            .map(|e| e.action)
            .filter(|a| a.as_str().starts_with("scim_user."))
            .collect();
        assert_eq!(
            actions,
            [
                EventAction::ScimUserCreated,
                EventAction::ScimUserDisabled,
                EventAction::ScimUserReactivated
            ]
        );
        c.server.stop().await;
    }

    #[tokio::test]
    async fn a_multi_attribute_replace_as_one_value_object_with_no_path() {
        let c = Scim::start().await;
        let id = c.user("ann@contoso.com").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (s, b) = c
            .patch(
                &format!("/Users/{id}"),
                json!([{"op": "replace", "value": {
                    "displayName": "Ann Lee", "name.familyName": "Lee", "active": false,
                    format!("{ENTERPRISE}:department"): "Support",
                }}]),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(
            (b["displayName"].as_str(), b["active"].as_bool()),
            (Some("Ann Lee"), Some(false))
        );
        assert_eq!(b["name"]["familyName"], "Lee");
        assert_eq!(b[ENTERPRISE]["department"], "Support");
        c.server.stop().await;
    }

    #[tokio::test]
    async fn groups_read_without_members_member_patches_answered_204() {
        let c = Scim::start().await;
        let ann = c.user("ann@contoso.com").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let bob = c.user("bob@contoso.com").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (s, g) = c
            .post(
                "/Groups",
                json!({"schemas": [GROUP], "displayName": "Sales", "externalId": "G-1"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{g}");
        let gid = g["id"].as_str().unwrap().to_owned();
        let (s, lookup) = c
            .get(&format!(
                "/Groups?excludedAttributes=members&filter={}",
                enc("displayName eq \"Sales\"")
            ))
            .await;
        assert_eq!(
            (s, lookup["totalResults"].as_u64()),
            (StatusCode::OK, Some(1))
        );
        let (s, b) = c.patch(&format!("/Groups/{gid}"), json!([{"op": "Add", "path": "members", "value": [{"value": ann}, {"value": bob}]}])).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
        let (s, b) = c
            .patch(
                &format!("/Groups/{gid}"),
                json!([{"op": "Remove", "path": format!("members[value eq \"{ann}\"]")}]),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
        let (_, b) = c.get(&format!("/Groups/{gid}")).await;
        assert_eq!(
            b["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["value"].as_str().unwrap())
                .collect::<Vec<_>>(),
            [bob.as_str()]
        );
        let (_, b) = c
            .get(&format!("/Groups/{gid}?excludedAttributes=members"))
            .await;
        assert!(b.get("members").is_none(), "{b}");
        let (s, _) = c
            .patch(
                &format!("/Groups/{gid}"),
                json!([{"op": "Replace", "path": "displayName", "value": "Sales EU"}]),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (_, b) = c
            .get(&format!(
                "/Groups?filter={}",
                enc(&format!("members.value eq \"{bob}\""))
            ))
            .await;
        assert_eq!(b["Resources"][0]["displayName"], "Sales EU");
        assert_eq!(
            c.send(
                reqwest::Method::DELETE,
                &format!("/Groups/{gid}"),
                None,
                &[]
            )
            .await
            .0,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            c.get(&format!("/Groups/{gid}")).await.0,
            StatusCode::NOT_FOUND
        );
        c.server.stop().await;
    }

    #[tokio::test]
    async fn plain_application_json_is_accepted() {
        let c = Scim::start().await;
        let answer = c
            .http
            .post(c.url("/Users"))
            .bearer_auth(&c.token)
            .header("content-type", "application/json; charset=utf-8")
            .body(json!({"schemas": [USER], "userName": "ann@contoso.com"}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::CREATED);
        c.server.stop().await;
    }
}
