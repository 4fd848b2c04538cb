//! Kraken nonces: strictly increasing, reserved in blocks, never repeated after a restart, a
//! crash in the middle of a reservation, or a full disk.

use std::time::{Duration, Instant};

use super::*;
use crate::disk::{CRASH_AFTER, FAIL_AFTER};

fn mark_on_disk(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect()
}

#[tokio::test]
async fn nonces_grow_strictly_and_a_restart_starts_above_the_mark_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = NonceStore::path_for(dir.path(), "main");
    assert_eq!(path, dir.path().join("kraken-main.nonce"));
    let nonces = KrakenNonces::new(dir.path());
    assert_eq!(nonces.next("main", 1000).await, Ok(1000));
    assert_eq!(nonces.next("main", 1000).await, Ok(1001)); // same millisecond
    assert_eq!(nonces.next("main", 900).await, Ok(1002)); // the clock stepped back
    assert_eq!(nonces.next("other", 5).await, Ok(5)); // keys are apart
    let mark = mark_on_disk(&path);
    assert_eq!(mark, 1000 + RESERVE_MS, "one block reserved ahead");
    drop(nonces); // as a SIGKILL would: what is in memory is gone
    let again = KrakenNonces::new(dir.path());
    assert_eq!(again.next("main", 0).await, Ok(mark + 1));
    assert_eq!(again.next("main", mark + 10).await, Ok(mark + 10));
    assert!(leftovers(dir.path()).is_empty());
}

#[tokio::test]
async fn a_block_is_written_once_and_then_nonces_come_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = NonceStore::path_for(dir.path(), "k");
    let nonces = KrakenNonces::new(dir.path());
    assert_eq!(nonces.next("k", 1).await, Ok(1));
    let written = std::fs::metadata(&path).unwrap().modified().unwrap();
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
    // Less than half a block: no reservation at all (each would rename a new file in).
    for want in 2..(RESERVE_MS / 2) {
        assert_eq!(nonces.next("k", 0).await, Ok(want));
    }
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::ino(&meta), ino);
    assert_eq!(meta.modified().unwrap(), written);
    assert_eq!(mark_on_disk(&path), 1 + RESERVE_MS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_block_is_reserved_in_the_background_before_this_one_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = NonceStore::path_for(dir.path(), "k");
    let nonces = KrakenNonces::new(dir.path());
    let mut last = 0;
    // Well past one block at a steady clock: every nonce is handed out, strictly growing, and
    // the mark on disk stays ahead of each one.
    for _ in 0..(RESERVE_MS * 2) {
        let n = nonces.next("k", 10).await.unwrap();
        assert!(n > last);
        assert!(n <= mark_on_disk(&path), "{n} handed out above the mark");
        last = n;
    }
    let start = Instant::now();
    while mark_on_disk(&path) < last + RESERVE_MS / 2 {
        assert!(start.elapsed() < Duration::from_secs(5), "no refill");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn a_crash_at_any_step_of_a_reservation_leaves_the_old_mark_or_the_new_one() {
    for step in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let path = NonceStore::path_for(dir.path(), "k");
        let mut store = NonceStore::open(&path, 0).unwrap();
        store.reserve(1000).unwrap();
        CRASH_AFTER.with(|c| c.set(Some(step)));
        let crashed =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.reserve(2000)));
        CRASH_AFTER.with(|c| c.set(None));
        // Whatever step it stopped at, the file holds a whole mark: 1000 (nothing above it
        // was handed out, since the handout waits for the reservation) or 2000.
        let mark = mark_on_disk(&path);
        assert!(mark == 1000 || mark == 2000, "step {step}: {mark}");
        if crashed.is_err() {
            assert_eq!(mark, 1000, "step {step}");
            // The crash left its temp file; the next start clears it and goes on above 1000.
            assert_eq!(leftovers(dir.path()).len(), 1, "step {step}");
        }
        let reopened = NonceStore::open(&path, 0).unwrap();
        assert_eq!(reopened.mark(), mark);
        assert!(leftovers(dir.path()).is_empty(), "step {step}");
    }
}

#[test]
fn a_full_disk_during_a_reservation_is_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = NonceStore::path_for(dir.path(), "k");
    let mut store = NonceStore::open(&path, 0).unwrap();
    store.reserve(1000).unwrap();
    FAIL_AFTER.with(|f| f.set(Some(0)));
    let err = store.reserve(2000);
    FAIL_AFTER.with(|f| f.set(None));
    let err = err.unwrap_err().to_string();
    assert!(
        err.contains("no space left") && err.contains("free some disk space"),
        "{err}"
    );
    assert_eq!(store.mark(), 1000);
    assert_eq!(mark_on_disk(&path), 1000);
    assert!(leftovers(dir.path()).is_empty());
    // Space again: the reservation goes through.
    store.reserve(2000).unwrap();
    assert_eq!(mark_on_disk(&path), 2000);
}

#[tokio::test]
async fn a_damaged_nonce_file_is_an_error_that_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = NonceStore::path_for(dir.path(), "k");
    std::fs::write(&path, "garbage").unwrap();
    let err = KrakenNonces::new(dir.path())
        .next("k", 1)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("delete it"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "garbage");
}

#[test]
fn a_reservation_that_fails_after_reading_the_file_still_reports_the_mark_found() {
    // The bug: the first reservation after a restart read the old mark, failed on a full disk,
    // and the retry then handed out nonces from the clock, below that mark.
    let dir = tempfile::tempdir().unwrap();
    let path = NonceStore::path_for(dir.path(), "k");
    std::fs::write(&path, "5000000").unwrap();
    let store = Mutex::new(None);
    FAIL_AFTER.with(|f| f.set(Some(0)));
    let (found, saved) = persist(&store, &path, 1000, 1000);
    FAIL_AFTER.with(|f| f.set(None));
    assert_eq!(found, Some(5_000_000));
    assert!(
        matches!(saved, Err(NonceError::Unsaved { .. })),
        "{saved:?}"
    );
    assert_eq!(mark_on_disk(&path), 5_000_000);
    // The caller raised its last nonce to the mark found; a retry asking for less leaves it.
    let (found, saved) = persist(&store, &path, 1000, 1000);
    assert_eq!(found, None);
    assert_eq!(saved, Ok(5_000_000));
}

#[test]
fn a_fifo_in_place_of_a_store_is_refused_not_waited_on() {
    // Red-team round 6: a FIFO at kraken-<name>.nonce held the signing thread (and the
    // agent's exit after SIGTERM) until something wrote to it.
    let dir = tempfile::tempdir().unwrap();
    let path = NonceStore::path_for(dir.path(), "kr");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    match NonceStore::open(&path, 0) {
        Err(e @ NonceError::NotAFile(_)) => assert!(e.to_string().contains("move it away"), "{e}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a FIFO was taken as a nonce store"),
    }
}

/// Red-team round 24: a folder or a device (through a link) in the store's place was "not a
/// regular file [internal]", with no way out; it is the trader's to move away, as a damaged
/// mark is, and the message says so.
#[test]
fn a_folder_or_a_device_in_place_of_a_store_says_to_move_it_away() {
    let dir = tempfile::tempdir().unwrap();
    let path = NonceStore::path_for(dir.path(), "kr");
    std::fs::create_dir(&path).unwrap();
    let folder = NonceStore::open(&path, 0).err().unwrap();
    std::fs::remove_dir(&path).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    let device = NonceStore::open(&path, 0).err().unwrap();
    for e in [folder, device] {
        assert!(matches!(e, NonceError::NotAFile(_)), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("not a regular file") && text.contains("move it away"),
            "{text}"
        );
        assert_eq!(
            crate::error::AgentError::Nonce(e).code(),
            tapsign_proto::ErrorCode::Keystore
        );
    }
}

/// Red-team round 24: the store was read whole, and a sparse file of gigabytes in its place
/// had every Kraken signing attempt allocate that much (2 GiB: 20 s each, and the OOM killer
/// for a larger one). At most a few bytes are read: it is damaged.
#[test]
fn a_huge_sparse_store_is_damaged_without_being_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = NonceStore::path_for(dir.path(), "kr");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(1 << 30).unwrap();
    drop(f);
    let start = std::time::Instant::now();
    match NonceStore::open(&path, 0) {
        Err(NonceError::Damaged(p)) => assert_eq!(p, path),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a sparse file was taken as a nonce store"),
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
    // A mark padded past the bound is damage too, though it would parse.
    std::fs::write(&path, format!("{}5", "0".repeat(64))).unwrap();
    assert!(matches!(
        NonceStore::open(&path, 0),
        Err(NonceError::Damaged(_))
    ));
}

/// Red-team round 20: any decimal in the file was taken as the mark, and a planted
/// `18446744073709551613` had the agent sign nonce 2^64-2, an order nothing could void (no
/// later nonce is left to send), after which Kraken refuses the key to every client. A mark
/// far ahead of the clock is refused, the file left as found; one within [`MAX_LEAD_MS`] (a
/// clock set back, restarts in a row) is signed above, as before.
#[tokio::test]
async fn a_planted_nonce_mark_far_ahead_of_the_clock_signs_nothing() {
    let now: u64 = 1_765_000_000_000;
    for planted in [
        u64::MAX - 2,
        now + 10_000_000_000,
        now + MAX_LEAD_MS + 2 * RESERVE_MS + 1,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = NonceStore::path_for(dir.path(), "kr");
        std::fs::write(&path, planted.to_string()).unwrap();
        let nonces = KrakenNonces::new(dir.path());
        for _ in 0..2 {
            match nonces.next("kr", now).await {
                Err(e @ NonceError::FarAhead { .. }) => {
                    let msg = e.to_string();
                    for says in [
                        "far in the future",
                        "signs again by itself in",
                        "delete the file",
                        "new API key",
                    ] {
                        assert!(msg.contains(says), "{planted}: {msg}");
                    }
                    assert!(msg.contains(&path.display().to_string()), "{msg}");
                }
                other => panic!("{planted}: {other:?}"),
            }
        }
        assert_eq!(mark_on_disk(&path), planted, "the file is left as found");
        // Deleted, as the message says: nonces start from the clock.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(nonces.next("kr", now).await, Ok(now));
    }
    for ahead in [MAX_LEAD_MS, 6 * 3_600_000] {
        let dir = tempfile::tempdir().unwrap();
        let path = NonceStore::path_for(dir.path(), "kr");
        std::fs::write(&path, (now + ahead).to_string()).unwrap();
        let nonces = KrakenNonces::new(dir.path());
        assert_eq!(nonces.next("kr", now).await, Ok(now + ahead + 1));
        // Red-team round 20's recheck: the agent left its own mark a block past the bound,
        // and restarted within the minute refused it as hand-written. Its own file opens.
        drop(nonces);
        let again = KrakenNonces::new(dir.path());
        assert_eq!(
            again.next("kr", now).await,
            Ok(now + ahead + RESERVE_MS + 1)
        );
    }
}

/// Red-team round 21: a mark planted within the day (23 h ahead) was signed above without a
/// word, and the file deleted afterwards sent the nonces back to the clock, below that
/// signature, which then stayed valid at Kraken for the rest of the day. The agent still signs
/// above such a mark (the day is kept for a clock set back), but `status` and its log say so,
/// with what to do; a mark the agent itself leaves (a block or two ahead) says nothing.
#[tokio::test]
async fn a_nonce_mark_planted_within_the_day_is_signed_above_with_a_warning() {
    let now: u64 = 1_765_000_000_000;
    let dir = tempfile::tempdir().unwrap();
    let path = NonceStore::path_for(dir.path(), "kr");
    let planted = now + 23 * 3_600_000;
    std::fs::write(&path, planted.to_string()).unwrap();
    let nonces = KrakenNonces::new(dir.path());
    assert!(nonces.warnings().is_empty());
    assert_eq!(nonces.next("kr", now).await, Ok(planted + 1));
    let warnings = nonces.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    for says in [
        path.display().to_string(),
        "ahead of this machine's clock".into(),
        "\"kr\"".into(),
        "voids every one signed before it".into(),
        "keep the file".into(),
    ] {
        assert!(warnings[0].contains(&says), "{says}: {warnings:?}");
    }
    // Said once, not at every signature.
    nonces.next("kr", now).await.unwrap();
    assert_eq!(nonces.warnings().len(), 1);

    // The agent's own marks: none, then what a restart finds after signing at the clock.
    let dir = tempfile::tempdir().unwrap();
    let nonces = KrakenNonces::new(dir.path());
    nonces.next("kr", now).await.unwrap();
    drop(nonces);
    let again = KrakenNonces::new(dir.path());
    again.next("kr", now).await.unwrap();
    assert!(again.warnings().is_empty(), "{:?}", again.warnings());
    // A lead within the bound tapsign leaves, as after restarts in a row.
    let dir = tempfile::tempdir().unwrap();
    let path = NonceStore::path_for(dir.path(), "kr");
    std::fs::write(&path, (now + LEAD_WARN_MS).to_string()).unwrap();
    let nonces = KrakenNonces::new(dir.path());
    nonces.next("kr", now).await.unwrap();
    assert!(nonces.warnings().is_empty(), "{:?}", nonces.warnings());
}

/// Red-team round 21: with the agent's process limit lowered, a reservation's thread was
/// refused inside tokio's `spawn_blocking`, which panicked: a background refill then left
/// `refilling` set for good, and a signature that needed a reservation died unanswered. Now a
/// refused thread is an error (`NoThread`), and the refill is over either way.
#[tokio::test]
async fn a_refused_thread_is_an_error_and_leaves_no_refill_under_way() {
    let dir = tempfile::tempdir().unwrap();
    let nonces = KrakenNonces::new(dir.path());
    assert_eq!(nonces.next("k", 1).await, Ok(1));
    crate::worker::REFUSE.with(|r| r.set(true));
    // Past half the block: handed out, with a refill in the background, which fails.
    let late = 2 + RESERVE_MS / 2;
    assert_eq!(nonces.next("k", late).await, Ok(late));
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(!nonces.key("k").handout().refilling, "the refill is over");
    // Past the block: the reservation is refused, and says so.
    match nonces.next("k", 10 * RESERVE_MS).await {
        Err(NonceError::NoThread(why)) => assert!(why.contains("cannot start a thread"), "{why}"),
        other => panic!("{other:?}"),
    }
    crate::worker::REFUSE.with(|r| r.set(false));
    assert_eq!(nonces.next("k", 10 * RESERVE_MS).await, Ok(10 * RESERVE_MS));
}
