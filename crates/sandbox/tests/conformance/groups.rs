//! `/groups`, members and `$ref` writes.

use reqwest::Method;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn groups_and_membership() {
    let env = start(200).await;
    let list = json_of(env.get("/v1.0/groups?$top=5").await).await;
    assert_eq!(list["value"].as_array().map(Vec::len), Some(5));
    assert!(list["@odata.nextLink"].is_string());
    let eng = json_of(
        env.get("/v1.0/groups?$filter=displayName%20eq%20'Engineering'")
            .await,
    )
    .await;
    let gid = eng["value"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!gid.is_empty());
    let members = crate::users::all_pages(
        &env,
        &format!("/v1.0/groups/{gid}/members?$top=7&$select=id,department"),
    )
    .await;
    assert!(!members.is_empty());
    assert!(
        members.iter().all(
            |m| m["department"] == "Engineering" && m["@odata.type"] == "#microsoft.graph.user"
        )
    );

    let r = env.send(Method::POST, "/v1.0/groups", Some(json!({"displayName": "Pilot", "mailEnabled": false, "mailNickname": "pilot", "securityEnabled": true}))).await;
    assert_eq!(r.status(), 201);
    let pilot = json_of(r).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_graph_error(
        env.send(
            Method::POST,
            "/v1.0/groups",
            Some(json!({"displayName": "No nickname"})),
        )
        .await,
        400,
        "Request_BadRequest",
    )
    .await;
    let uid = members[0]["id"].as_str().unwrap_or_default().to_string();
    let add =
        json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{uid}")});
    assert_eq!(
        env.send(
            Method::POST,
            &format!("/v1.0/groups/{pilot}/members/$ref"),
            Some(add.clone())
        )
        .await
        .status(),
        204
    );
    assert_graph_error(
        env.send(
            Method::POST,
            &format!("/v1.0/groups/{pilot}/members/$ref"),
            Some(add),
        )
        .await,
        400,
        "Request_BadRequest",
    )
    .await;
    let m = json_of(env.get(&format!("/v1.0/groups/{pilot}/members")).await).await;
    assert_eq!(m["value"][0]["id"], json!(uid));
    let of = json_of(env.get(&format!("/v1.0/users/{uid}/memberOf")).await).await;
    assert!(
        of["value"]
            .as_array()
            .is_some_and(|g| g.iter().any(|g| g["id"] == json!(pilot)))
    );
    assert_eq!(
        env.send(
            Method::DELETE,
            &format!("/v1.0/groups/{pilot}/members/{uid}/$ref"),
            None
        )
        .await
        .status(),
        204
    );
    assert_graph_error(
        env.send(
            Method::DELETE,
            &format!("/v1.0/groups/{pilot}/members/{uid}/$ref"),
            None,
        )
        .await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
    assert_graph_error(
        env.get("/v1.0/groups/6a1e2b8c-0000-4000-8000-000000000000")
            .await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
    assert_eq!(
        env.send(Method::DELETE, &format!("/v1.0/groups/{pilot}"), None)
            .await
            .status(),
        204
    );
    assert_graph_error(
        env.get(&format!("/v1.0/groups/{pilot}")).await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
}
