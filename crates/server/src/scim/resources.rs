//! The `/scim/v2` handlers: Users, Groups, searches and the discovery endpoints.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use behalf_app::ops::scim::{ListParams, Projection, ScimFailure, ScimResource, etag, parse_etag};
use behalf_scim::{ScimError, ScimType};
use serde_json::Value;

use super::error::invalid_value;
use super::{ScimHttpError, base_url, client, if_match, json_body, scim_json};
use crate::ServerState;

type Answer = Result<Response, ScimHttpError>;
type Params = Query<HashMap<String, String>>;

/// A query parameter by name, ignoring case.
fn param<'q>(q: &'q HashMap<String, String>, name: &str) -> Option<&'q str> {
    q.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn int_param(q: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ScimHttpError> {
    param(q, name)
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| invalid_value(format!("{name} {v:?} is not an integer")))
        })
        .transpose()
}

fn projection(q: &HashMap<String, String>) -> Result<Projection, ScimHttpError> {
    Ok(Projection::parse(
        param(q, "attributes"),
        param(q, "excludedAttributes"),
    )?)
}

fn list_params(q: &HashMap<String, String>) -> Result<ListParams, ScimHttpError> {
    Ok(ListParams {
        filter: param(q, "filter").map(str::to_owned),
        sort_by: param(q, "sortBy").map(str::to_owned),
        sort_order: param(q, "sortOrder").map(str::to_owned),
        start_index: int_param(q, "startIndex")?,
        count: int_param(q, "count")?,
        projection: projection(q)?,
    })
}

/// One resource, with its ETag (and `Location` when created).
fn resource(status: StatusCode, r: &ScimResource) -> Response {
    let mut response = scim_json(status, &r.body);
    if let Ok(v) = HeaderValue::from_str(&etag(r.version)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    if status == StatusCode::CREATED
        && let Some(Ok(v)) = r.body["meta"]["location"]
            .as_str()
            .map(HeaderValue::from_str)
    {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// A GET of one resource: 304 when `If-None-Match` names its version (RFC 7644 §3.14).
fn read(headers: &HeaderMap, r: &ScimResource) -> Response {
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == "*" || parse_etag(t) == Some(r.version))
        });
    if unchanged {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&etag(r.version)) {
            response.headers_mut().insert(header::ETAG, v);
        }
        return response;
    }
    resource(StatusCode::OK, r)
}

pub async fn list_users(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Query(q): Params,
) -> Answer {
    let scim = client(&state, &headers).await?;
    let list = scim
        .list_users(&base_url(&headers), &list_params(&q)?)
        .await?;
    Ok(scim_json(StatusCode::OK, &list))
}

pub async fn search_users(
    State(state): State<ServerState>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let scim = client(&state, &headers).await?;
    let params = ListParams::from_search_body(&json_body(&headers, &body)?)?;
    let list = scim.list_users(&base_url(&headers), &params).await?;
    Ok(scim_json(StatusCode::OK, &list))
}

pub async fn get_user(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Params,
) -> Answer {
    let scim = client(&state, &headers).await?;
    let r = scim
        .get_user(&base_url(&headers), &id, &projection(&q)?)
        .await?;
    Ok(read(&headers, &r))
}

pub async fn create_user(
    State(state): State<ServerState>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let scim = client(&state, &headers).await?;
    let r = scim
        .create_user(&base_url(&headers), &json_body(&headers, &body)?)
        .await?;
    Ok(resource(StatusCode::CREATED, &r))
}

pub async fn replace_user(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let scim = client(&state, &headers).await?;
    let r = scim
        .replace_user(
            &base_url(&headers),
            &id,
            &json_body(&headers, &body)?,
            if_match(&headers)?,
        )
        .await?;
    Ok(resource(StatusCode::OK, &r))
}

/// 200 with the user (as Microsoft's SCIM guide shows for user updates).
pub async fn patch_user(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let scim = client(&state, &headers).await?;
    let r = scim
        .patch_user(
            &base_url(&headers),
            &id,
            &json_body(&headers, &body)?,
            if_match(&headers)?,
        )
        .await?;
    Ok(resource(StatusCode::OK, &r))
}

pub async fn delete_user(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let scim = client(&state, &headers).await?;
    scim.delete_user(&id, if_match(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list_groups(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Query(q): Params,
) -> Answer {
    let scim = client(&state, &headers).await?;
    let list = scim
        .list_groups(&base_url(&headers), &list_params(&q)?)
        .await?;
    Ok(scim_json(StatusCode::OK, &list))
}

pub async fn search_groups(
    State(state): State<ServerState>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let scim = client(&state, &headers).await?;
    let params = ListParams::from_search_body(&json_body(&headers, &body)?)?;
    let list = scim.list_groups(&base_url(&headers), &params).await?;
    Ok(scim_json(StatusCode::OK, &list))
}

pub async fn get_group(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Params,
) -> Answer {
    let scim = client(&state, &headers).await?;
    let r = scim
        .get_group(&base_url(&headers), &id, &projection(&q)?)
        .await?;
    Ok(read(&headers, &r))
}

pub async fn create_group(
    State(state): State<ServerState>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let scim = client(&state, &headers).await?;
    let r = scim
        .create_group(&base_url(&headers), &json_body(&headers, &body)?)
        .await?;
    Ok(resource(StatusCode::CREATED, &r))
}

pub async fn replace_group(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let scim = client(&state, &headers).await?;
    let r = scim
        .replace_group(
            &base_url(&headers),
            &id,
            &json_body(&headers, &body)?,
            if_match(&headers)?,
        )
        .await?;
    Ok(resource(StatusCode::OK, &r))
}

/// 204: Microsoft's SCIM guide answers group updates (members or not) with no content.
pub async fn patch_group(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let scim = client(&state, &headers).await?;
    scim.patch_group(
        &base_url(&headers),
        &id,
        &json_body(&headers, &body)?,
        if_match(&headers)?,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn delete_group(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let scim = client(&state, &headers).await?;
    scim.delete_group(&id, if_match(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /.search` (RFC 7644 §3.4.3) across Users and Groups: each type answers what its filter
/// can name (a filter on a user attribute finds no groups), users first. `startIndex` and
/// `count` apply to each type's part.
pub async fn search_all(
    State(state): State<ServerState>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let scim = client(&state, &headers).await?;
    let params = ListParams::from_search_body(&json_body(&headers, &body)?)?;
    let base = base_url(&headers);
    let mut parts = Vec::new();
    let mut refusal = None;
    for list in [
        scim.list_users(&base, &params).await,
        scim.list_groups(&base, &params).await,
    ] {
        match list {
            Ok(list) => parts.push(list),
            Err(ScimFailure::Protocol(e)) if e.scim_type == Some(ScimType::InvalidFilter) => {
                refusal = Some(e)
            }
            Err(e) => return Err(e.into()),
        }
    }
    if parts.is_empty() {
        return Err(refusal
            .unwrap_or_else(|| {
                ScimError::bad_request(ScimType::InvalidFilter, "no resource type matches")
            })
            .into());
    }
    let total: u64 = parts
        .iter()
        .map(|p| p["totalResults"].as_u64().unwrap_or(0))
        .sum();
    let resources: Vec<Value> = parts
        .iter_mut()
        .flat_map(|p| {
            p["Resources"]
                .as_array_mut()
                .map(std::mem::take)
                .unwrap_or_default()
        })
        .collect();
    let start = params.start_index.unwrap_or(1).max(1) as u64;
    Ok(scim_json(
        StatusCode::OK,
        &behalf_scim::list::list_response(resources, total, start),
    ))
}

pub async fn service_provider_config(
    State(state): State<ServerState>,
    headers: HeaderMap,
) -> Answer {
    client(&state, &headers).await?;
    Ok(scim_json(
        StatusCode::OK,
        &behalf_scim::schema::service_provider_config(&base_url(&headers)),
    ))
}

/// A list of discovery resources (RFC 7644 §4: a ListResponse).
fn discovery_list(items: Value) -> Response {
    let items = match items {
        Value::Array(items) => items,
        other => vec![other],
    };
    let n = items.len() as u64;
    scim_json(
        StatusCode::OK,
        &behalf_scim::list::list_response(items, n, 1),
    )
}

pub async fn resource_types(State(state): State<ServerState>, headers: HeaderMap) -> Answer {
    client(&state, &headers).await?;
    Ok(discovery_list(behalf_scim::schema::resource_types(
        &base_url(&headers),
    )))
}

pub async fn resource_type(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    client(&state, &headers).await?;
    let found = behalf_scim::schema::resource_type(&base_url(&headers), &id).ok_or_else(|| {
        ScimHttpError::Failure(ScimFailure::NotFound {
            what: "ResourceType",
            id: id.clone(),
        })
    })?;
    Ok(scim_json(StatusCode::OK, &found))
}

/// Read by Entra ID on every save of the provisioning configuration.
pub async fn schemas(State(state): State<ServerState>, headers: HeaderMap) -> Answer {
    client(&state, &headers).await?;
    Ok(discovery_list(behalf_scim::schema::schemas_at(&base_url(
        &headers,
    ))))
}

pub async fn schema(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    client(&state, &headers).await?;
    let found =
        behalf_scim::schema::schema_resource_by_id(&base_url(&headers), &id).ok_or_else(|| {
            ScimHttpError::Failure(ScimFailure::NotFound {
                what: "Schema",
                id: id.clone(),
            })
        })?;
    Ok(scim_json(StatusCode::OK, &found))
}

pub async fn no_such_endpoint(
    State(state): State<ServerState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Answer {
    client(&state, &headers).await?;
    Err(ScimHttpError::Failure(ScimFailure::NotFound {
        what: "endpoint",
        id: uri.path().to_owned(),
    }))
}
