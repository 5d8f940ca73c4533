use super::*;

#[test]
fn secret_debug_and_display_hide_the_value() {
    let secret = Secret::new("hunter2");
    assert_eq!(format!("{secret:?}"), "<hidden>");
    assert_eq!(format!("{secret}"), "<hidden>");
    assert_eq!(serde_json::to_string(&secret).unwrap(), "\"<hidden>\"");
    assert!(secret.ct_eq("hunter2"));
    assert!(!secret.ct_eq("hunter3"));
}

#[test]
fn upn_validation_names_the_problem() {
    assert!(Upn::parse("Ada.Lovelace@contoso.com").is_ok());
    assert_eq!(
        Upn::parse("Ada@Contoso.com").unwrap().key(),
        "ada@contoso.com"
    );
    let err = Upn::parse("no-at-sign").unwrap_err().to_string();
    assert!(
        err.contains("userPrincipalName") && err.contains("'@'"),
        "{err}"
    );
    assert!(Upn::parse("a b@c.com").is_err());
    assert!(Upn::parse("@c.com").is_err());
    assert!(Upn::parse("a@b@c.com").is_err());
}

#[test]
fn states_round_trip_through_their_stored_form() {
    for state in ItemState::ALL {
        assert_eq!(state.as_str().parse::<ItemState>().unwrap(), *state);
    }
    let err = "registerd".parse::<ItemState>().unwrap_err().to_string();
    assert!(err.contains("registerd"), "{err}");
}

#[test]
fn only_owners_and_editing_admins_may_provision() {
    let admin = |role, can_edit_users| Admin {
        id: AdminId::new(),
        workspace_id: WorkspaceId::new(),
        username: "a".into(),
        role,
        can_edit_users,
        created_at: 0,
    };
    assert!(admin(Role::Owner, false).may_provision());
    assert!(admin(Role::Admin, true).may_provision());
    assert!(!admin(Role::Admin, false).may_provision());
    assert!(!admin(Role::Viewer, true).may_provision());
}

#[test]
fn timestamps_format_and_parse() {
    let at = parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
    assert_eq!(format_millis(at), "2026-11-22T10:00:00Z");
    assert!(parse_rfc3339("yesterday").is_err());
}

#[test]
fn event_details_keep_the_report_fields_by_name_and_the_rest_as_extra() {
    let detail = EventDetail {
        reason: Some("Graph refused it".into()),
        error_code: Some("invalidRequest".into()),
        ..EventDetail::upn("ada@contoso.example")
    }
    .with("lifetime_in_minutes", 60);
    let json = serde_json::to_value(&detail).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"upn": "ada@contoso.example", "reason": "Graph refused it",
            "error_code": "invalidRequest", "lifetime_in_minutes": 60}),
        "absent fields are left out, extras sit beside the named ones"
    );
    let back: EventDetail = serde_json::from_value(json).unwrap();
    assert_eq!(back, detail);
    // A detail written with other keys (an older release's `error`) keeps them in `extra`.
    let old: EventDetail = serde_json::from_str(r#"{"upn":"a@b.c","error":"boom"}"#).unwrap();
    assert_eq!(old.upn.as_deref(), Some("a@b.c"));
    assert_eq!(old.extra["error"], "boom");
}

#[test]
fn event_actions_have_one_stored_form_each() {
    for action in EventAction::ALL {
        assert_eq!(action.as_str().parse::<EventAction>().unwrap(), *action);
        assert!(action.as_str().contains('.'), "{action}: <subject>.<verb>");
    }
    assert!("passkey.exploded".parse::<EventAction>().is_err());
}
