//! What the keystore's `keystore` lines carry for the change notes (`super::attest`): a
//! command stopped between its manifest and its line, and a rotation's line, as the next check
//! reads them.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::files::CRASH_AFTER;
use super::ledger::LedgerEntry;
use super::tests::{Fixture, cred};
use super::*;
use crate::secret::SecretBytes;

/// The generations of the manifest on disk and of the last `keystore` line recorded.
fn on_disk_and_recorded(f: &Fixture) -> (u64, u64) {
    let on_disk = f.ks.read_manifest().unwrap().unwrap().generation;
    let recorded = (f.ledger.entries.iter().rev())
        .find_map(|e| match e {
            LedgerEntry::Manifest { generation, .. } => Some(*generation),
            _ => None,
        })
        .unwrap();
    (on_disk, recorded)
}

/// Red-team round 22: a `key add --replace` made during a rotation's touch, and the rotation
/// killed once its manifest was in place, before its line: the rotation's notes were never
/// said, and the next check compared with the manifest it left, which records the new file.
/// The check judges a manifest no signed line records against the last signed check.
#[test]
fn a_check_after_a_rotation_stopped_before_its_line_names_what_it_folded_in() {
    let (mut f, _) = Fixture::populated();
    f.check().unwrap();
    let mut other = cred("upbit-main", Exchange::Upbit, None);
    other.secret = SecretBytes::from_slice(b"someone else's secret");
    f.add(&other, true).unwrap();
    let mut n = 0;
    loop {
        let (before, _) = on_disk_and_recorded(&f);
        CRASH_AFTER.with(|c| c.set(Some(n)));
        let finished = catch_unwind(AssertUnwindSafe(|| f.rotate(None))).is_ok();
        CRASH_AFTER.with(|c| c.set(None));
        assert!(!finished, "no step left the manifest unrecorded");
        let (on_disk, recorded) = on_disk_and_recorded(&f);
        if on_disk > before && recorded < on_disk {
            break;
        }
        n += 1;
    }
    let checked = f.check().unwrap();
    let loud: Vec<&str> = (checked.changes.loud.iter())
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(loud, ["upbit-main"], "{:?}", checked.changes);
    assert!(
        checked.changes.loud[0].1.contains("was replaced since"),
        "{:?}",
        checked.changes
    );
}

/// A rotation re-seals every credential, and its line records the new files: a check that
/// judges from the log (here a rebuild with the manifest gone) finds nothing changed (red-team
/// round 22: every credential read as a file no line records).
#[test]
fn a_rotations_line_records_the_files_it_sealed_again() {
    let (mut f, _) = Fixture::populated();
    f.check().unwrap();
    f.rotate(None).unwrap();
    let Some(LedgerEntry::Manifest { records, .. }) =
        (f.ledger.entries.iter().rev()).find(|e| matches!(e, LedgerEntry::Manifest { .. }))
    else {
        panic!("no keystore line")
    };
    let manifest = f.ks.read_manifest().unwrap().unwrap();
    assert_eq!(records, &manifest.credentials);
    let files = manifest
        .credentials
        .iter()
        .map(|c| (c.name.clone(), c.sha256.clone()))
        .collect();
    let ev = f.ledger.since(&Anchor::genesis());
    let notes = super::notes::since_logged_check(&ev, &files).unwrap();
    assert!(notes.is_empty(), "{notes:?}");
}
