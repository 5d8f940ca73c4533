use std::os::unix::fs::PermissionsExt;

use super::*;

#[test]
fn first_start_creates_a_private_key_file_and_later_starts_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join(MASTER_KEY_FILE_NAME);
    let created = MasterKey::load_or_create(&path).unwrap();
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    let again = MasterKey::load_or_create(&path).unwrap();
    assert_eq!(created.id(), again.id());
    assert!(created.id().starts_with("mk1-"));
    // No temporary file is left behind.
    assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
}

#[test]
fn concurrent_first_starts_agree_on_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(MASTER_KEY_FILE_NAME);
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| MasterKey::load_or_create(&path).unwrap().id().to_owned()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
}

#[test]
fn readable_key_files_and_bad_keys_are_refused_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    fs::write(&path, STANDARD.encode([7u8; 32])).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let err = MasterKey::load(&path).unwrap_err().to_string();
    assert!(err.contains("chmod 600"), "{err}");

    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        MasterKey::load(&path).unwrap().id(),
        MasterKey::from_bytes(&[7u8; 32]).unwrap().id()
    );

    fs::write(&path, STANDARD.encode([7u8; 16])).unwrap();
    assert!(
        MasterKey::load(&path)
            .unwrap_err()
            .to_string()
            .contains("32 bytes")
    );
    assert!(MasterKey::load(&dir.path().join("missing")).is_err());
}

#[test]
fn debug_hides_the_key() {
    let key = MasterKey::from_bytes(&[9u8; 32]).unwrap();
    let printed = format!("{key:?}");
    assert!(printed.contains("<hidden>") && printed.contains(key.id()));
    assert!(!printed.contains("9, 9"));
}
