use std::sync::atomic::Ordering;

use super::*;
use crate::credential::{Credential, Exchange};
use crate::secret::{SecretBytes, SecretString};
use crate::session::{Bounds, Session};

fn cred() -> Credential {
    Credential {
        name: "k".into(),
        exchange: Exchange::Binance,
        api_key: SecretString::new("ak".into()),
        secret: SecretBytes::from_slice(b"sk"),
        passphrase: None,
    }
}

/// A suspend: the boot clock jumps past the session's end while the monotonic clock that
/// drives tokio's timers stands still. After resume the reaper must wipe within MAX_NAP.
#[tokio::test(start_paused = true)]
async fn a_deadline_slept_through_is_wiped_soon_after_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, boot) = Agent::with_test_clock(dir.path());
    let bounds = Bounds {
        ttl: Duration::from_secs(1800),
        idle: Duration::from_secs(3600),
        max_signatures: 10,
        per_key: None,
    };
    *agent.session() = Session::unlock(vec![cred()], bounds, agent.now(), "test".into());
    let task = tokio::spawn(reaper(Arc::clone(&agent)));

    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        agent.session().is_unlocked(),
        "a minute in, the session is open"
    );

    boot.fetch_add(3600, Ordering::SeqCst); // asleep for an hour
    tokio::time::sleep(MAX_NAP + Duration::from_millis(10)).await; // awake again
    assert!(
        !agent.session().is_unlocked(),
        "the reaper missed a deadline slept through"
    );
    assert_eq!(agent.session().lock_reason(), Some(&LockReason::Expired));
    task.abort();
}
