use proptest::prelude::*;

use super::*;

#[test]
fn rows_are_read_from_either_column_name_and_other_columns_ignored() {
    let text = "DisplayName,userPrincipalName,Department\nAda,ada@contoso.com,R&D\nBob,bob@contoso.com,Sales\n";
    let input = parse(text.as_bytes()).unwrap();
    assert_eq!(input.rows.len(), 2);
    assert_eq!(input.rows[1].line, 3);
    assert!(input.problems.is_empty());
    let input = parse("\u{feff}UPN\nada@contoso.com\n".as_bytes()).unwrap();
    assert_eq!(input.rows[0].upn.as_str(), "ada@contoso.com");
}

#[test]
fn bad_rows_are_named_by_line_and_the_rest_go_on() {
    let text = "UPN,Name\nada@contoso.com,Ada\nnot-an-upn,X\n,Empty\nADA@contoso.com,Again\n\nbob@contoso.com,Bob\n";
    let input = parse(text.as_bytes()).unwrap();
    let ok: Vec<_> = input
        .rows
        .iter()
        .map(|r| (r.line, r.upn.as_str()))
        .collect();
    assert_eq!(ok, [(2, "ada@contoso.com"), (7, "bob@contoso.com")]);
    let problems: Vec<_> = input
        .problems
        .iter()
        .map(|p| (p.line, p.reason.as_str()))
        .collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert_eq!(problems[0].0, 3);
    assert!(problems[0].1.contains("'@'"));
    assert_eq!(problems[1], (4, "the UPN column is empty"));
    assert_eq!(problems[2], (5, "duplicate of line 2"));
}

#[test]
fn a_file_without_a_upn_column_is_refused_naming_what_it_has() {
    let err = parse("mail,name\na@b.c,A\n".as_bytes()).unwrap_err();
    assert_eq!(
        err,
        CsvError::NoUpnColumn {
            found: "mail, name".into()
        }
    );
    assert_eq!(parse("".as_bytes()).unwrap_err(), CsvError::Empty);
}

proptest! {
    #[test]
    fn any_bytes_are_parsed_or_refused_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&bytes[..]);
    }

    #[test]
    fn every_row_is_either_kept_or_reported(upns in proptest::collection::vec("[a-z]{1,8}(@[a-z]{1,6}\\.com)?", 1..40)) {
        let text = format!("UPN\n{}\n", upns.join("\n"));
        let input = parse(text.as_bytes()).unwrap();
        prop_assert_eq!(input.rows.len() + input.problems.len(), upns.len());
        for row in &input.rows {
            prop_assert_eq!(row.upn.as_str(), upns[(row.line - 2) as usize].as_str());
        }
    }
}
