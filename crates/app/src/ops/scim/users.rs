//! `/Users`: RFC 7644 §3.3 create, §3.4.1 read, §3.4.2 list, §3.5.1 replace, §3.5.2 modify,
//! §3.6 delete, over the store's SCIM users of the caller's connection.

use behalf_domain::{EventAction, EventDetail, Upn, UserId};
use behalf_scim::schema::{ENTERPRISE_USER, USER};
use behalf_scim::{PatchRequest, ResourceKind, ScimError, ScimType};
use behalf_store::scim::{ScimEmail, ScimUserRow, ScimUserWrite, ScimWrite};
use serde_json::{Map, Value, json};

use super::{
    ListParams, Projection, Scim, ScimFailure, ScimResource, boolean, get, invalid_value, parse_id,
    storable, stored_object,
};

/// How many times a write based on a read is retried when another write came in between
/// (only without `If-Match`: with it, the client asked to be told).
const RETRIES: usize = 3;

/// A User body as columns and the resource to keep.
#[derive(Clone)]
struct ParsedUser {
    upn: Upn,
    display_name: Option<String>,
    external_id: Option<String>,
    active: bool,
    mail: Option<String>,
    department: Option<String>,
    emails: Vec<ScimEmail>,
    resource: Value,
}

impl ParsedUser {
    fn write(&self) -> ScimUserWrite<'_> {
        ScimUserWrite {
            upn: &self.upn,
            display_name: self.display_name.as_deref(),
            external_id: self.external_id.as_deref(),
            active: self.active,
            mail: self.mail.as_deref(),
            department: self.department.as_deref(),
            emails: &self.emails,
            resource: &self.resource,
        }
    }
}

fn text(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, ScimFailure> {
    match get(obj, name) {
        None => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid_value(format!(
            "{name} must be a string, not {other}"
        ))),
    }
}

/// Reads a User resource (RFC 7643 §4.1, with the enterprise extension §4.3).
fn parse_user(body: &Value) -> Result<ParsedUser, ScimFailure> {
    let obj = body.as_object().ok_or_else(|| {
        ScimFailure::Protocol(ScimError::bad_request(
            ScimType::InvalidSyntax,
            "the body is not a JSON object",
        ))
    })?;
    let user_name = text(obj, "userName")?
        .ok_or_else(|| invalid_value("userName is required (RFC 7643 §4.1)"))?;
    // Behalf registers passkeys in Entra ID by user principal name.
    let upn = Upn::parse(&user_name).map_err(|e| invalid_value(format!("userName: {e}")))?;
    let active = match get(obj, "active") {
        None => true,
        Some(v) => boolean(v, "active")?,
    };
    let mut emails = Vec::new();
    match get(obj, "emails") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let Some(e) = item.as_object() else {
                    return Err(invalid_value(format!("emails[{i}] is not an object")));
                };
                let Some(value) = text(e, "value")? else {
                    continue;
                };
                emails.push(ScimEmail {
                    value,
                    kind: text(e, "type")?,
                    primary: get(e, "primary")
                        .map(|p| boolean(p, "emails.primary"))
                        .transpose()?
                        .unwrap_or(false),
                });
            }
        }
        Some(other) => {
            return Err(invalid_value(format!(
                "emails must be an array, not {other}"
            )));
        }
    }
    // The address the rest of Behalf shows: the primary one, else the work one, else the first.
    let mail = emails
        .iter()
        .find(|e| e.primary)
        .or_else(|| {
            emails.iter().find(|e| {
                e.kind
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case("work"))
            })
        })
        .or(emails.first())
        .map(|e| e.value.clone());
    let enterprise = obj
        .iter()
        .find(|(k, _)| super::filter::is_enterprise(k))
        .and_then(|(_, v)| v.as_object());
    let department = match enterprise {
        Some(ext) => text(ext, "department")?,
        None => None,
    };
    let mut resource = storable(body, &["id", "meta", "password", "groups"]);
    if let Some(r) = resource.as_object_mut() {
        // Kept as the boolean it is, whatever spelling the client sent.
        r.retain(|k, _| !k.eq_ignore_ascii_case("active"));
        r.insert("active".into(), Value::Bool(active));
        let mut schemas = vec![json!(USER)];
        if enterprise.is_some() {
            schemas.push(json!(ENTERPRISE_USER));
        }
        r.insert("schemas".into(), Value::Array(schemas));
    }
    Ok(ParsedUser {
        upn,
        display_name: text(obj, "displayName")?,
        external_id: text(obj, "externalId")?,
        active,
        mail,
        department,
        emails,
        resource,
    })
}

impl Scim<'_> {
    /// The full resource of a stored user: what was written, with the columns' truth and `meta`.
    fn render_user(&self, base: &str, row: &ScimUserRow) -> Value {
        self.complete_user(base, stored_object(row.resource.clone()), row)
    }

    /// [`Self::render_user`] of a row the caller is done with: its stored resource is moved
    /// into the answer, not copied.
    fn render_owned_user(&self, base: &str, mut row: ScimUserRow) -> Value {
        let stored = stored_object(std::mem::take(&mut row.resource));
        self.complete_user(base, stored, &row)
    }

    /// The stored resource `out` of `row`, with the columns' truth and `meta` laid over it.
    fn complete_user(&self, base: &str, mut out: Map<String, Value>, row: &ScimUserRow) -> Value {
        let id = row.user.id.to_string();
        out.insert("id".into(), json!(id));
        out.insert("userName".into(), json!(row.user.upn.as_str()));
        out.insert("active".into(), json!(row.user.enabled));
        match &row.scim_external_id {
            Some(e) => out.insert("externalId".into(), json!(e)),
            None => out.remove("externalId"),
        };
        out.insert(
            "meta".into(),
            self.meta(
                base,
                ResourceKind::User,
                &id,
                row.user.created_at,
                row.user.updated_at,
                row.version,
            ),
        );
        Value::Object(out)
    }

    fn answer_user(&self, base: &str, row: &ScimUserRow, projection: &Projection) -> ScimResource {
        ScimResource {
            body: projection.apply(self.render_user(base, row), ResourceKind::User),
            version: row.version,
        }
    }

    async fn user_row(&self, id: &str) -> Result<ScimUserRow, ScimFailure> {
        let uid: UserId = parse_id("User", id)?;
        self.app
            .store()
            .get_scim_user(self.connection_id(), uid)
            .await?
            .ok_or_else(|| ScimFailure::NotFound {
                what: "User",
                id: id.to_owned(),
            })
    }

    /// `GET /Users/{id}`.
    pub async fn get_user(
        &self,
        base: &str,
        id: &str,
        projection: &Projection,
    ) -> Result<ScimResource, ScimFailure> {
        let row = self.user_row(id).await?;
        Ok(self.answer_user(base, &row, projection))
    }

    /// `GET /Users` and `POST /Users/.search`: a ListResponse.
    pub async fn list_users(&self, base: &str, params: &ListParams) -> Result<Value, ScimFailure> {
        let query = params.query(ResourceKind::User)?;
        let page = self
            .app
            .store()
            .list_scim_users(self.connection_id(), &query)
            .await?;
        let resources = page
            .resources
            .into_iter()
            .map(|row| {
                params
                    .projection
                    .apply(self.render_owned_user(base, row), ResourceKind::User)
            })
            .collect();
        Ok(behalf_scim::list::list_response(
            resources,
            page.total,
            (query.offset + 1) as u64,
        ))
    }

    /// `POST /Users` (RFC 7644 §3.3); a userName taken is 409 `uniqueness`.
    pub async fn create_user(&self, base: &str, body: &Value) -> Result<ScimResource, ScimFailure> {
        let parsed = parse_user(body)?;
        let event = self.event(
            EventAction::ScimUserCreated,
            EventDetail::upn(parsed.upn.as_str()).with("active", parsed.active),
        );
        let row = self
            .app
            .store()
            .create_scim_user(
                self.app.workspace().id,
                self.connection_id(),
                &parsed.write(),
                event,
            )
            .await?;
        if row.user.enabled {
            self.provision_if_automatic(row.user.id).await;
        }
        Ok(self.answer_user(base, &row, &Projection::default()))
    }

    /// `PUT /Users/{id}` (RFC 7644 §3.5.1).
    pub async fn replace_user(
        &self,
        base: &str,
        id: &str,
        body: &Value,
        if_match: Option<i64>,
    ) -> Result<ScimResource, ScimFailure> {
        let parsed = parse_user(body)?;
        self.write_user(base, id, if_match, |_| Ok(parsed.clone()))
            .await
    }

    /// `PATCH /Users/{id}` (RFC 7644 §3.5.2): the operations applied to the stored resource,
    /// all or nothing, then written as a replace.
    pub async fn patch_user(
        &self,
        base: &str,
        id: &str,
        body: &Value,
        if_match: Option<i64>,
    ) -> Result<ScimResource, ScimFailure> {
        let request = PatchRequest::from_value(body)?;
        self.write_user(base, id, if_match, |current| {
            let mut resource = current.clone();
            behalf_scim::apply(&mut resource, &request.operations, ResourceKind::User)?;
            parse_user(&resource)
        })
        .await
    }

    /// Reads, changes (`change` of the current full resource) and writes a user, at the version
    /// read; retried when another write came in between, unless the client sent If-Match.
    async fn write_user(
        &self,
        base: &str,
        id: &str,
        if_match: Option<i64>,
        change: impl Fn(&Value) -> Result<ParsedUser, ScimFailure>,
    ) -> Result<ScimResource, ScimFailure> {
        for _ in 0..RETRIES {
            let current = self.user_row(id).await?;
            if if_match.is_some_and(|v| v != current.version) {
                return Err(ScimFailure::VersionMismatch);
            }
            let parsed = change(&self.render_user(base, &current))?;
            let was = current.user.enabled;
            let action = match (was, parsed.active) {
                (true, false) => EventAction::ScimUserDisabled,
                (false, true) => EventAction::ScimUserReactivated,
                _ => EventAction::ScimUserUpdated,
            };
            let event = self.event(action, EventDetail::upn(parsed.upn.as_str()));
            match self
                .app
                .store()
                .replace_scim_user(
                    self.connection_id(),
                    current.user.id,
                    current.version,
                    &parsed.write(),
                    event,
                )
                .await?
            {
                ScimWrite::Done(row) => {
                    match action {
                        EventAction::ScimUserDisabled => self.deprovision_soon(row.user.id),
                        EventAction::ScimUserReactivated => {
                            self.provision_if_automatic(row.user.id).await;
                        }
                        _ => {}
                    }
                    return Ok(self.answer_user(base, &row, &Projection::default()));
                }
                ScimWrite::Gone => {
                    return Err(ScimFailure::NotFound {
                        what: "User",
                        id: id.to_owned(),
                    });
                }
                ScimWrite::VersionMismatch { .. } if if_match.is_some() => {
                    return Err(ScimFailure::VersionMismatch);
                }
                ScimWrite::VersionMismatch { .. } => continue,
            }
        }
        Err(ScimFailure::Internal(format!(
            "user {id} kept changing under {RETRIES} attempts to write it"
        )))
    }

    /// `DELETE /Users/{id}` (RFC 7644 §3.6): 404 from then on; the user is disabled and marked
    /// for deprovisioning.
    pub async fn delete_user(&self, id: &str, if_match: Option<i64>) -> Result<(), ScimFailure> {
        let uid: UserId = parse_id("User", id)?;
        let current = self.user_row(id).await?;
        let event = self.event(
            EventAction::ScimUserDeleted,
            EventDetail::upn(current.user.upn.as_str()),
        );
        match self
            .app
            .store()
            .delete_scim_user(self.connection_id(), uid, if_match, event)
            .await?
        {
            ScimWrite::Done(_) => {
                self.deprovision_soon(uid);
                Ok(())
            }
            ScimWrite::Gone => Err(ScimFailure::NotFound {
                what: "User",
                id: id.to_owned(),
            }),
            ScimWrite::VersionMismatch { .. } => Err(ScimFailure::VersionMismatch),
        }
    }
}
