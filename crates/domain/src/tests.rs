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
