//! The sandbox's SCIM client against a small recording SCIM service kept in this file: the
//! requests must have the shapes Microsoft documents for Entra's provisioning service, and after
//! each cycle the service must hold what the tenant holds. (Behalf's own `/scim/v2` is the peer
//! of the end-to-end test, `crates/behalf/tests/scim_e2e.rs`.)

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use behalf_sandbox::{CycleKind, PushAction, PushObject, Sandbox, SandboxConfig, ScimPush};
use serde_json::{Value, json};

const TOKEN: &str = "scim-secret-token";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// One request as the service received it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: BTreeMap<String, String>,
    body: Value,
    at: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    users: BTreeMap<String, Value>,
    groups: BTreeMap<String, Value>,
    seen: Vec<Seen>,
    next_id: u64,
    /// userName → (status, scimType) to refuse its creation with, once.
    refuse_create: BTreeMap<String, (u16, &'static str)>,
    /// userName whose POST is answered 429 with `Retry-After: 1`, once; then when that was.
    throttle_create: Option<String>,
    throttled_at: Option<Instant>,
}

type Service = Arc<Mutex<Inner>>;

fn scim(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/scim+json")],
        body.to_string(),
    )
        .into_response()
}

fn error(status: u16, scim_type: Option<&str>, detail: &str) -> Response {
    let mut body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": status.to_string(),
        "detail": detail,
    });
    if let Some(t) = scim_type {
        body["scimType"] = json!(t);
    }
    scim(StatusCode::from_u16(status).unwrap(), body)
}

fn list(resources: Vec<Value>) -> Response {
    scim(
        StatusCode::OK,
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": resources.len(),
            "startIndex": 1,
            "itemsPerPage": resources.len(),
            "Resources": resources,
        }),
    )
}

/// `attr eq "value"`, the only filter Entra sends here.
fn eq_filter(filter: &str) -> (String, String) {
    let (attr, rest) = filter.split_once(" eq ").expect("an eq filter");
    let value: String = serde_json::from_str(rest).expect("a JSON string value");
    (attr.to_string(), value)
}

fn record(s: &Service, method: &Method, path: &str, raw: Option<&str>, body: &Bytes) {
    let query = url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body).expect("a JSON body")
    };
    s.lock().unwrap().seen.push(Seen {
        method: method.clone(),
        path: path.to_string(),
        query,
        body,
        at: Instant::now(),
    });
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

async fn schemas(State(s): State<Service>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    record(&s, &Method::GET, "/Schemas", None, &Bytes::new());
    list(vec![
        json!({"id": "urn:ietf:params:scim:schemas:core:2.0:User", "name": "User"}),
        json!({"id": "urn:ietf:params:scim:schemas:core:2.0:Group", "name": "Group"}),
    ])
}

async fn collection(
    State(s): State<Service>,
    Path(kind): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let path = format!("/{kind}");
    record(&s, &method, &path, raw.as_deref(), &body);
    let mut inner = s.lock().unwrap();
    if method == Method::GET {
        let query: BTreeMap<String, String> =
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let (attr, value) = eq_filter(&query["filter"]);
        let store = if kind == "Users" {
            &inner.users
        } else {
            &inner.groups
        };
        let found = store
            .values()
            .filter(|r| r[&attr].as_str() == Some(&value))
            .cloned()
            .map(|mut r| {
                if query.get("excludedAttributes").map(String::as_str) == Some("members") {
                    r.as_object_mut().unwrap().remove("members");
                }
                r
            })
            .collect();
        return list(found);
    }
    let mut resource: Value = serde_json::from_slice(&body).unwrap();
    if kind == "Users" {
        let user_name = resource["userName"].as_str().unwrap().to_string();
        if inner.throttle_create.as_deref() == Some(&user_name) {
            inner.throttle_create = None;
            inner.throttled_at = Some(Instant::now());
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response();
        }
        if let Some((status, t)) = inner.refuse_create.remove(&user_name) {
            return error(status, Some(t), &format!("refused {user_name}"));
        }
        if inner
            .users
            .values()
            .any(|u| u["userName"] == resource["userName"])
        {
            return error(409, Some("uniqueness"), "userName is taken");
        }
    }
    inner.next_id += 1;
    let id = format!("{}-{}", kind.to_lowercase(), inner.next_id);
    resource["id"] = json!(id);
    if kind == "Users" {
        inner.users.insert(id, resource.clone());
    } else {
        resource["members"] = json!([]);
        inner.groups.insert(id, resource.clone());
    }
    scim(StatusCode::CREATED, resource)
}

/// RFC 7644 §3.5.2, as much of it as Entra's requests use.
fn apply(resource: &mut Value, op: &Value) {
    let kind = op["op"].as_str().unwrap();
    let path = op["path"].as_str();
    match (kind, path) {
        ("Replace", None) => {
            for (k, v) in op["value"].as_object().unwrap() {
                resource[k] = v.clone();
            }
        }
        ("Replace", Some("active")) => {
            resource["active"] = json!(op["value"].as_str().unwrap() == "True");
        }
        ("Replace", Some(attr)) => resource[attr] = op["value"].clone(),
        ("Add", Some("members")) => {
            let members = resource["members"].as_array_mut().unwrap();
            for m in op["value"].as_array().unwrap() {
                if !members.contains(m) {
                    members.push(m.clone());
                }
            }
        }
        ("Remove", Some(p)) if p.starts_with("members[value eq ") => {
            let id: String =
                serde_json::from_str(&p["members[value eq ".len()..p.len() - 1]).unwrap();
            resource["members"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["value"] != json!(id));
        }
        ("Remove", Some(attr)) => {
            resource.as_object_mut().unwrap().remove(attr);
        }
        other => panic!("an operation Entra does not send: {other:?}"),
    }
}

async fn item(
    State(s): State<Service>,
    Path((kind, id)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    record(&s, &method, &format!("/{kind}/{id}"), None, &body);
    let mut inner = s.lock().unwrap();
    let users = kind == "Users";
    if method == Method::DELETE {
        let removed = if users {
            let r = inner.users.remove(&id);
            for g in inner.groups.values_mut() {
                g["members"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|m| m["value"] != json!(id));
            }
            r
        } else {
            inner.groups.remove(&id)
        };
        return match removed {
            Some(_) => StatusCode::NO_CONTENT.into_response(),
            None => error(404, None, "no such resource"),
        };
    }
    let patch: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(patch["schemas"], json!([PATCH_OP]));
    let store = if users {
        &mut inner.users
    } else {
        &mut inner.groups
    };
    let Some(resource) = store.get_mut(&id) else {
        return error(404, None, "no such resource");
    };
    for op in patch["Operations"].as_array().unwrap() {
        apply(resource, op);
    }
    if users {
        scim(StatusCode::OK, resource.clone())
    } else {
        // Entra expects 204 for a group's PATCH.
        StatusCode::NO_CONTENT.into_response()
    }
}

struct Fixture {
    sandbox: Sandbox,
    service: Service,
    base: String,
    http: reqwest::Client,
}

impl Fixture {
    async fn start(users: usize, groups: usize) -> Fixture {
        let sandbox = Sandbox::start(SandboxConfig {
            users,
            groups: Some(groups),
            ..SandboxConfig::default()
        })
        .await
        .unwrap();
        let service: Service = Arc::default();
        let app = Router::new()
            .route("/scim/v2/Schemas", get(schemas))
            .route("/scim/v2/{kind}", get(collection).post(collection))
            .route(
                "/scim/v2/{kind}/{id}",
                axum::routing::patch(item).delete(item),
            )
            .with_state(service.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/scim/v2", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Fixture {
            sandbox,
            service,
            base,
            http: reqwest::Client::new(),
        }
    }

    fn push(&self) -> ScimPush {
        ScimPush::new(&self.base, TOKEN)
    }

    fn seen(&self) -> Vec<Seen> {
        self.service.lock().unwrap().seen.clone()
    }

    fn clear_seen(&self) {
        self.service.lock().unwrap().seen.clear();
    }

    async fn graph(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut r = self
            .http
            .request(method, format!("{}/v1.0{path}", self.sandbox.graph_url()))
            .bearer_auth(self.sandbox.app_token().unwrap());
        if let Some(b) = body {
            r = r.json(&b);
        }
        let answer = r.send().await.unwrap();
        assert!(answer.status().is_success(), "{path}: {}", answer.status());
        answer.json().await.unwrap_or(Value::Null)
    }

    /// The tenant's users: (upn, mailNickname, accountEnabled, department), all pages.
    async fn tenant_users(&self) -> Vec<Value> {
        let mut url = Some(format!(
            "{}/v1.0/users?$top=999&$select=id,userPrincipalName,mailNickname,accountEnabled,department,displayName,mail",
            self.sandbox.graph_url()
        ));
        let mut out = Vec::new();
        while let Some(u) = url {
            let page: Value = self
                .http
                .get(&u)
                .bearer_auth(self.sandbox.app_token().unwrap())
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            out.extend(page["value"].as_array().unwrap().iter().cloned());
            url = page["@odata.nextLink"].as_str().map(String::from);
        }
        out
    }

    /// group displayName → member UPNs, at the tenant.
    async fn tenant_groups(&self) -> BTreeMap<String, BTreeSet<String>> {
        let groups = self
            .graph(reqwest::Method::GET, "/groups?$top=999", None)
            .await;
        let mut out = BTreeMap::new();
        for g in groups["value"].as_array().unwrap() {
            let id = g["id"].as_str().unwrap();
            let members = self
                .graph(
                    reqwest::Method::GET,
                    &format!("/groups/{id}/members?$top=999&$select=userPrincipalName"),
                    None,
                )
                .await;
            let upns = members["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["userPrincipalName"].as_str().unwrap().to_string())
                .collect();
            out.insert(g["displayName"].as_str().unwrap().to_string(), upns);
        }
        out
    }

    /// group displayName → member userNames, at the service.
    fn service_groups(&self) -> BTreeMap<String, BTreeSet<String>> {
        let inner = self.service.lock().unwrap();
        inner
            .groups
            .values()
            .map(|g| {
                let members = g["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| {
                        inner.users[m["value"].as_str().unwrap()]["userName"]
                            .as_str()
                            .unwrap()
                            .to_string()
                    })
                    .collect();
                (g["displayName"].as_str().unwrap().to_string(), members)
            })
            .collect()
    }

    fn service_user(&self, upn: &str) -> Option<Value> {
        self.service
            .lock()
            .unwrap()
            .users
            .values()
            .find(|u| u["userName"] == json!(upn))
            .cloned()
    }
}

#[tokio::test]
async fn saving_the_configuration_reads_the_schemas_and_test_connection_asks_for_a_random_guid() {
    let f = Fixture::start(5, 1).await;
    let push = f.push();
    push.save_configuration().await.unwrap();
    push.test_connection().await.unwrap();
    let seen = f.seen();
    assert_eq!(seen[0].path, "/Schemas");
    assert_eq!(
        (&seen[1].method, seen[1].path.as_str()),
        (&Method::GET, "/Users")
    );
    let (attr, value) = eq_filter(&seen[1].query["filter"]);
    assert_eq!(attr, "userName");
    assert!(uuid::Uuid::parse_str(&value).is_ok(), "{value}");

    // A wrong token: the service's 401 is the test's answer, named.
    let wrong = ScimPush::new(&f.base, "not-the-token");
    let e = wrong.test_connection().await.unwrap_err().to_string();
    assert!(e.contains("GET /Users") && e.contains("401"), "{e}");
    let e = wrong.save_configuration().await.unwrap_err().to_string();
    assert!(e.contains("GET /Schemas") && e.contains("401"), "{e}");
}

#[tokio::test]
async fn the_initial_cycle_creates_every_user_and_group_as_entra_does() {
    let f = Fixture::start(120, 6).await;
    let mut push = f.push();
    let report = push.initial_cycle(&f.sandbox).await;
    assert!(report.failures.is_empty(), "{report}");
    assert_eq!(report.kind, CycleKind::Initial);
    assert_eq!(report.users.created, 120, "{report}");
    assert_eq!(report.groups.created, 6, "{report}");

    // Every tenant user is at the service with Entra's default mappings.
    let tenant = f.tenant_users().await;
    assert_eq!(tenant.len(), 120);
    for u in &tenant {
        let upn = u["userPrincipalName"].as_str().unwrap();
        let r = f
            .service_user(upn)
            .unwrap_or_else(|| panic!("{upn} not pushed"));
        assert_eq!(r["externalId"], u["mailNickname"], "{r}");
        assert_eq!(r["active"], u["accountEnabled"], "{r}");
        assert_eq!(r["displayName"], u["displayName"], "{r}");
        assert_eq!(r["emails"][0]["type"], "work", "{r}");
        assert_eq!(r["emails"][0]["value"], u["mail"], "{r}");
        assert_eq!(r[ENTERPRISE]["department"], u["department"], "{r}");
        assert_eq!(
            r["schemas"],
            json!(["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE])
        );
    }
    assert_eq!(f.service_groups(), f.tenant_groups().await);
    let members: usize = f.service_groups().values().map(BTreeSet::len).sum();
    assert_eq!(report.members_added, members);

    // The requests: a lookup before each create, groups read without members and created
    // without them, members added by PATCH.
    let seen = f.seen();
    let user_lookups = seen
        .iter()
        .filter(|s| s.method == Method::GET && s.path == "/Users")
        .count();
    assert_eq!(user_lookups, 120);
    for s in seen
        .iter()
        .filter(|s| s.method == Method::GET && s.path == "/Groups")
    {
        assert_eq!(s.query["excludedAttributes"], "members");
        assert_eq!(eq_filter(&s.query["filter"]).0, "displayName");
    }
    for s in seen
        .iter()
        .filter(|s| s.method == Method::POST && s.path == "/Groups")
    {
        assert!(s.body.get("members").is_none(), "{}", s.body);
        assert!(s.body["externalId"].is_string());
    }
    let adds: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.method == Method::PATCH && s.path.starts_with("/Groups/"))
        .collect();
    assert!(!adds.is_empty());
    for s in adds {
        assert_eq!(s.body["Operations"][0]["op"], "Add");
        assert_eq!(s.body["Operations"][0]["path"], "members");
    }

    // Run again by a new job, it matches everyone and creates nothing.
    let mut again = f.push();
    let report = again.initial_cycle(&f.sandbox).await;
    assert!(report.failures.is_empty(), "{report}");
    assert_eq!(
        (report.users.created, report.users.unchanged),
        (0, 120),
        "{report}"
    );
    assert_eq!(report.groups.created, 0, "{report}");
    assert_eq!(f.service.lock().unwrap().users.len(), 120);
}

#[tokio::test]
async fn incremental_cycles_send_only_what_changed_in_entras_shapes() {
    use reqwest::Method as M;
    // Ten groups: one per department, so everyone is in one.
    let f = Fixture::start(60, 10).await;
    let mut push = f.push();
    let first = push.initial_cycle(&f.sandbox).await;
    assert!(first.failures.is_empty(), "{first}");

    // Nothing changed: nothing sent.
    f.clear_seen();
    let idle = push.incremental_cycle(&f.sandbox).await;
    assert_eq!(idle.requests, 0, "{idle}");

    let users = f.tenant_users().await;
    let enabled: Vec<&Value> = users
        .iter()
        .skip(1)
        .filter(|u| u["accountEnabled"] == json!(true))
        .collect();
    let upn = |u: &Value| u["userPrincipalName"].as_str().unwrap().to_string();
    let id = |u: &Value| u["id"].as_str().unwrap().to_string();
    let (edited, disabled, unassigned, soft, purged) =
        (enabled[0], enabled[1], enabled[2], enabled[3], enabled[4]);
    f.graph(
        M::PATCH,
        &format!("/users/{}", id(edited)),
        Some(json!({"jobTitle": "Chief Tester", "department": "Quality"})),
    )
    .await;
    f.graph(
        M::PATCH,
        &format!("/users/{}", id(disabled)),
        Some(json!({"accountEnabled": false})),
    )
    .await;
    assert_eq!(
        f.sandbox
            .set_provisioning_scope(&[upn(unassigned)], false)
            .unwrap(),
        1
    );
    f.graph(M::DELETE, &format!("/users/{}", id(soft)), None)
        .await;
    f.graph(M::DELETE, &format!("/users/{}", id(purged)), None)
        .await;
    f.graph(
        M::DELETE,
        &format!("/directory/deletedItems/{}", id(purged)),
        None,
    )
    .await;
    let new = f
        .graph(
            M::POST,
            "/users",
            Some(json!({
                "accountEnabled": true,
                "displayName": "New Hire",
                "mailNickname": "new.hire",
                "userPrincipalName": "new.hire@contoso.example",
                "passwordProfile": {"password": "Passw0rd!Passw0rd!"},
            })),
        )
        .await;
    assert!(new["id"].is_string());

    f.clear_seen();
    let report = push.incremental_cycle(&f.sandbox).await;
    assert!(report.failures.is_empty(), "{report}");
    assert_eq!(report.kind, CycleKind::Incremental);
    assert_eq!(report.users.created, 1, "{report}");
    assert_eq!(report.users.updated, 1, "{report}");
    // The soft-deleted user is disabled, as Entra does; the unassigned and the purged are deleted.
    assert_eq!(report.users.disabled, 2, "{report}");
    assert_eq!(report.users.deleted, 2, "{report}");

    let seen = f.seen();
    let edited_id = push.scim_id_of(&upn(edited)).unwrap().to_string();
    let patch = seen
        .iter()
        .find(|s| s.path == format!("/Users/{edited_id}"))
        .expect("the edited user was patched");
    assert_eq!(patch.method, Method::PATCH);
    let ops = patch.body["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 1, "one Replace: {}", patch.body);
    assert_eq!(ops[0]["op"], "Replace");
    assert!(ops[0].get("path").is_none(), "no path: {}", patch.body);
    assert_eq!(ops[0]["value"]["title"], "Chief Tester");
    assert_eq!(ops[0]["value"][ENTERPRISE]["department"], "Quality");
    assert_eq!(
        ops[0]["value"].as_object().unwrap().len(),
        2,
        "{}",
        patch.body
    );

    let disabled_id = push.scim_id_of(&upn(disabled)).unwrap().to_string();
    let patch = seen
        .iter()
        .find(|s| s.path == format!("/Users/{disabled_id}"))
        .unwrap();
    assert_eq!(
        patch.body["Operations"],
        json!([{"op": "Replace", "path": "active", "value": "False"}])
    );
    assert_eq!(f.service_user(&upn(disabled)).unwrap()["active"], false);
    assert_eq!(f.service_user(&upn(soft)).unwrap()["active"], false);
    assert!(f.service_user(&upn(unassigned)).is_none());
    assert!(f.service_user(&upn(purged)).is_none());
    assert_eq!(
        seen.iter().filter(|s| s.method == Method::DELETE).count(),
        2
    );
    // The soft-deleted user left their groups: a members[value eq "…"] removal.
    let soft_id = push.scim_id_of(&upn(soft)).unwrap().to_string();
    let removal = seen
        .iter()
        .filter(|s| s.method == Method::PATCH && s.path.starts_with("/Groups/"))
        .flat_map(|s| s.body["Operations"].as_array().unwrap().clone())
        .find(|op| op["op"] == "Remove")
        .expect("a member removal");
    assert_eq!(
        removal["path"],
        json!(format!("members[value eq \"{soft_id}\"]"))
    );
    assert!(report.members_removed >= 1, "{report}");

    // The service's groups are the tenant's (deleted and unassigned users are in none).
    let mut tenant = f.tenant_groups().await;
    for members in tenant.values_mut() {
        members.remove(&upn(unassigned));
    }
    assert_eq!(f.service_groups(), tenant);

    // Back in scope: created again.
    f.sandbox
        .set_provisioning_scope(&[upn(unassigned)], true)
        .unwrap();
    let report = push.incremental_cycle(&f.sandbox).await;
    assert_eq!(report.users.created, 1, "{report}");
    assert!(f.service_user(&upn(unassigned)).is_some());
    assert_eq!(f.service_groups(), f.tenant_groups().await);
}

#[tokio::test]
async fn a_refused_user_is_reported_with_the_scim_error_and_retried_by_the_next_cycle() {
    let f = Fixture::start(30, 2).await;
    let users = f.tenant_users().await;
    let victim = users[7]["userPrincipalName"].as_str().unwrap().to_string();
    f.service
        .lock()
        .unwrap()
        .refuse_create
        .insert(victim.clone(), (400, "invalidValue"));
    let mut push = f.push();
    let report = push.initial_cycle(&f.sandbox).await;
    assert_eq!(report.users.failed, 1, "{report}");
    assert_eq!(report.users.created, 29, "{report}");
    let failure = &report.failures[0];
    assert_eq!(failure.object, PushObject::User(victim.clone()));
    assert_eq!(failure.action, PushAction::Create);
    assert_eq!(failure.status, Some(400));
    assert_eq!(failure.scim_type.as_deref(), Some("invalidValue"));
    assert!(report.to_string().contains(&victim), "{report}");

    // The next cycle tries again (the service now accepts), and the user joins their groups.
    let report = push.incremental_cycle(&f.sandbox).await;
    assert!(report.failures.is_empty(), "{report}");
    assert_eq!(report.users.created, 1, "{report}");
    assert_eq!(f.service_groups(), f.tenant_groups().await);
}

#[tokio::test]
async fn a_429_is_waited_out_for_its_retry_after() {
    let f = Fixture::start(10, 1).await;
    let users = f.tenant_users().await;
    let slow = users[3]["userPrincipalName"].as_str().unwrap().to_string();
    f.service.lock().unwrap().throttle_create = Some(slow.clone());
    let mut push = f.push();
    let report = push.initial_cycle(&f.sandbox).await;
    assert!(report.failures.is_empty(), "{report}");
    assert_eq!(
        (report.users.created, report.throttled),
        (10, 1),
        "{report}"
    );
    let inner = f.service.lock().unwrap();
    let throttled_at = inner.throttled_at.unwrap();
    let retry = inner
        .seen
        .iter()
        .filter(|s| s.method == Method::POST && s.body["userName"] == json!(slow))
        .map(|s| s.at)
        .max()
        .unwrap();
    assert!(
        retry.duration_since(throttled_at) >= Duration::from_secs(1),
        "sent again after {:?}",
        retry.duration_since(throttled_at)
    );
}
