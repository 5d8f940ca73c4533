//! `/users`: paging, query options, get / create / update / delete, errors.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

/// Follows `@odata.nextLink` to the end; returns all objects.
pub async fn all_pages(env: &Env, first: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut next = Some(first.to_string());
    while let Some(url) = next {
        let r = env.get(&url).await;
        assert_eq!(r.status(), 200, "{url}");
        let v = json_of(r).await;
        out.extend(v["value"].as_array().cloned().unwrap_or_default());
        next = v["@odata.nextLink"].as_str().map(String::from);
    }
    out
}

#[tokio::test]
async fn top_out_of_range_is_400() {
    let env = start(5).await;
    for top in ["0", "1000", "-1", "abc"] {
        assert_graph_error(
            env.get(&format!("/v1.0/users?$top={top}")).await,
            400,
            "Request_BadRequest",
        )
        .await;
    }
    assert_eq!(env.get("/v1.0/users?$top=999").await.status(), 200);
    assert_eq!(env.get("/v1.0/users?$top=1").await.status(), 200);
}

#[tokio::test]
async fn paging_is_complete_and_select_projects() {
    let env = start(2_500).await;
    let all = all_pages(
        &env,
        "/v1.0/users?$top=999&$select=id,userPrincipalName,accountEnabled",
    )
    .await;
    assert_eq!(all.len(), 2_500);
    let ids: HashSet<_> = all
        .iter()
        .map(|u| u["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(ids.len(), 2_500);
    let first = &all[0];
    assert!(
        first.get("displayName").is_none(),
        "$select must drop unselected properties: {first}"
    );
    assert!(
        first["userPrincipalName"]
            .as_str()
            .is_some_and(|u| u.ends_with("@contoso.example"))
    );
    assert!(
        all.iter().any(|u| u["accountEnabled"] == json!(false)),
        "some seeded users are disabled"
    );
    // Default page size and default properties.
    let v = json_of(env.get("/v1.0/users").await).await;
    assert_eq!(v["value"].as_array().map(Vec::len), Some(100));
    assert!(
        v["@odata.nextLink"]
            .as_str()
            .is_some_and(|l| l.contains("$skiptoken="))
    );
    assert!(
        v["value"][0].get("accountEnabled").is_none() && v["value"][0].get("displayName").is_some()
    );
    // A garbage skip token is a 400, not a crash.
    assert_graph_error(
        env.get("/v1.0/users?$skiptoken=%%%").await,
        400,
        "Request_BadRequest",
    )
    .await;
    // beta serves the same data.
    let b = json_of(env.get("/beta/users?$top=3").await).await;
    assert_eq!(b["value"][0]["id"], v["value"][0]["id"]);
}

#[tokio::test]
async fn filters() {
    let env = start(300).await;
    let disabled = all_pages(
        &env,
        "/v1.0/users?$filter=accountEnabled%20eq%20false&$select=accountEnabled",
    )
    .await;
    assert!(!disabled.is_empty());
    assert!(disabled.iter().all(|u| u["accountEnabled"] == json!(false)));
    let ada = all_pages(
        &env,
        "/v1.0/users?$filter=startswith(displayName,'ada')&$top=5",
    )
    .await;
    assert!(ada.iter().all(|u| {
        u["displayName"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Ada")
    }));
    let admin = env.sb.admin_upn().to_uppercase();
    let v = json_of(
        env.get(&format!(
            "/v1.0/users?$filter=userPrincipalName%20eq%20'{admin}'"
        ))
        .await,
    )
    .await;
    assert_eq!(v["value"].as_array().map(Vec::len), Some(1));
    assert_graph_error(
        env.get("/v1.0/users?$filter=city%20eq%20'Paris'").await,
        400,
        "Request_UnsupportedQuery",
    )
    .await;
    assert_graph_error(
        env.get("/v1.0/users?$filter=displayName%20gt%20'A'").await,
        400,
        "Request_UnsupportedQuery",
    )
    .await;
    assert_graph_error(
        env.get("/v1.0/users?$filter=displayName%20eq").await,
        400,
        "Request_BadRequest",
    )
    .await;
}

#[tokio::test]
async fn get_by_id_or_upn_and_404() {
    let env = start(20).await;
    let admin = env.sb.admin_upn();
    let id = env.user_id(&admin).await;
    let v = json_of(env.get(&format!("/v1.0/users/{id}")).await).await;
    assert_eq!(v["userPrincipalName"], json!(admin));
    let v = json_of(
        env.get(&format!("/v1.0/users/{}", admin.to_uppercase()))
            .await,
    )
    .await;
    assert_eq!(v["id"], json!(id));
    assert_graph_error(
        env.get("/v1.0/users/nobody@contoso.example").await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
    assert_graph_error(
        env.get("/v1.0/users/6a1e2b8c-0000-4000-8000-000000000000")
            .await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
}

#[tokio::test]
async fn a_create_with_a_weak_password_or_a_bad_mail_nickname_is_refused_as_graph_refuses_it() {
    let env = start(1).await;
    let body = json!({"accountEnabled": true, "displayName": "New Hire", "mailNickname": "new.hire",
        "userPrincipalName": "new.hire@contoso.example", "passwordProfile": {"password": "password"}});
    let r = env
        .send(Method::POST, "/v1.0/users", Some(body.clone()))
        .await;
    assert_eq!(r.status(), 400);
    let said = json_of(r).await;
    assert_eq!(said["error"]["code"], "Request_BadRequest");
    assert!(
        said["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("password complexity"),
        "{said}"
    );
    let mut bad = body.clone();
    bad["passwordProfile"] = json!({"password": "Xy!12345678"});
    bad["mailNickname"] = json!("new hire");
    assert_graph_error(
        env.send(Method::POST, "/v1.0/users", Some(bad.clone()))
            .await,
        400,
        "Request_BadRequest",
    )
    .await;
    let group = json!({"displayName": "G", "mailNickname": "g@x", "mailEnabled": false, "securityEnabled": true});
    assert_graph_error(
        env.send(Method::POST, "/v1.0/groups", Some(group)).await,
        400,
        "Request_BadRequest",
    )
    .await;
    bad["mailNickname"] = json!("new.hire");
    let r = env.send(Method::POST, "/v1.0/users", Some(bad)).await;
    assert_eq!(
        r.status(),
        201,
        "the same user with a good password and nickname"
    );
}

#[tokio::test]
async fn create_update_soft_delete_restore_purge() {
    let env = start(20).await;
    let body = json!({"accountEnabled": true, "displayName": "New Hire", "mailNickname": "new.hire",
        "userPrincipalName": "new.hire@contoso.example", "passwordProfile": {"password": "Xy!12345678"}, "department": "Sales"});
    let r = env
        .send(Method::POST, "/v1.0/users", Some(body.clone()))
        .await;
    assert_eq!(r.status(), 201);
    let created = json_of(r).await;
    let id = created["id"].as_str().unwrap_or_default().to_string();
    // Duplicate UPN, foreign domain, missing required property.
    assert_graph_error(
        env.send(Method::POST, "/v1.0/users", Some(body.clone()))
            .await,
        400,
        "Request_BadRequest",
    )
    .await;
    let mut foreign = body.clone();
    foreign["userPrincipalName"] = json!("x@fabrikam.example");
    assert_graph_error(
        env.send(Method::POST, "/v1.0/users", Some(foreign)).await,
        400,
        "Request_BadRequest",
    )
    .await;
    let mut missing = body.clone();
    missing.as_object_mut().map(|m| m.remove("mailNickname"));
    missing["userPrincipalName"] = json!("other@contoso.example");
    assert_graph_error(
        env.send(Method::POST, "/v1.0/users", Some(missing)).await,
        400,
        "Request_BadRequest",
    )
    .await;

    let r = env
        .send(
            Method::PATCH,
            &format!("/v1.0/users/{id}"),
            Some(json!({"accountEnabled": false, "jobTitle": "Rep"})),
        )
        .await;
    assert_eq!(r.status(), 204);
    let v = json_of(
        env.get(&format!(
            "/v1.0/users/{id}?$select=accountEnabled,jobTitle,department"
        ))
        .await,
    )
    .await;
    assert_eq!(
        (
            v["accountEnabled"].clone(),
            v["jobTitle"].clone(),
            v["department"].clone()
        ),
        (json!(false), json!("Rep"), json!("Sales"))
    );
    assert_graph_error(
        env.send(
            Method::PATCH,
            "/v1.0/users/ghost@contoso.example",
            Some(json!({"jobTitle": "x"})),
        )
        .await,
        404,
        "Request_ResourceNotFound",
    )
    .await;

    assert_eq!(
        env.send(Method::DELETE, &format!("/v1.0/users/{id}"), None)
            .await
            .status(),
        204
    );
    assert_graph_error(
        env.get(&format!("/v1.0/users/{id}")).await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
    let deleted = json_of(
        env.get("/v1.0/directory/deletedItems/microsoft.graph.user")
            .await,
    )
    .await;
    assert!(
        deleted["value"]
            .as_array()
            .is_some_and(|d| d.iter().any(|u| u["id"] == json!(id)))
    );
    assert_eq!(
        env.send(
            Method::POST,
            &format!("/v1.0/directory/deletedItems/{id}/restore"),
            None
        )
        .await
        .status(),
        200
    );
    assert_eq!(env.get(&format!("/v1.0/users/{id}")).await.status(), 200);
    assert_eq!(
        env.send(Method::DELETE, &format!("/v1.0/users/{id}"), None)
            .await
            .status(),
        204
    );
    assert_eq!(
        env.send(
            Method::DELETE,
            &format!("/v1.0/directory/deletedItems/{id}"),
            None
        )
        .await
        .status(),
        204
    );
    assert_graph_error(
        env.send(
            Method::POST,
            &format!("/v1.0/directory/deletedItems/{id}/restore"),
            None,
        )
        .await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
    // The UPN is free again after a permanent delete.
    assert_eq!(
        env.send(Method::POST, "/v1.0/users", Some(body))
            .await
            .status(),
        201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_is_consistent_under_concurrent_writes() {
    let env = std::sync::Arc::new(start(3_000).await);
    let before = all_pages(&env, "/v1.0/users?$top=999&$select=id").await;
    let before: Vec<String> = before
        .iter()
        .map(|u| u["id"].as_str().unwrap_or_default().to_string())
        .collect();
    // Delete every 10th pre-existing user and create new ones while another task pages.
    let doomed: Vec<String> = before.iter().skip(1).step_by(10).cloned().collect();
    let writer = {
        let env = env.clone();
        let doomed = doomed.clone();
        tokio::spawn(async move {
            for (i, id) in doomed.iter().enumerate() {
                assert_eq!(
                    env.send(Method::DELETE, &format!("/v1.0/users/{id}"), None)
                        .await
                        .status(),
                    204
                );
                let body = json!({"accountEnabled": true, "displayName": format!("Concurrent {i}"), "mailNickname": format!("c{i}"),
                    "userPrincipalName": format!("concurrent.{i}@contoso.example"), "passwordProfile": {"password": "Xy!12345678"}});
                assert_eq!(
                    env.send(Method::POST, "/v1.0/users", Some(body))
                        .await
                        .status(),
                    201
                );
            }
        })
    };
    let seen = all_pages(&env, "/v1.0/users?$top=50&$select=id").await;
    writer.await.unwrap_or_else(|e| panic!("{e}"));
    let seen_ids: Vec<String> = seen
        .iter()
        .map(|u| u["id"].as_str().unwrap_or_default().to_string())
        .collect();
    let unique: HashSet<_> = seen_ids.iter().cloned().collect();
    assert_eq!(unique.len(), seen_ids.len(), "no user may appear twice");
    let doomed: HashSet<_> = doomed.into_iter().collect();
    for id in before.iter().filter(|id| !doomed.contains(*id)) {
        assert!(
            unique.contains(id),
            "user {id} existed throughout and was missed"
        );
    }
    // After the writes settle, a fresh enumeration sees exactly the final population.
    let after = all_pages(&env, "/v1.0/users?$top=999&$select=id").await;
    assert_eq!(after.len(), before.len());
}
