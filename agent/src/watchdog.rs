//! The watchdog: a thread of its own that notices what no signal reports.
//!
//! - **The agent did not run.** A process of the user can stop the agent (SIGSTOP) while the
//!   trader locks the screen, so that it misses the lock (docs/screen-lock.md). SIGCONT locks
//!   it again, but its handler runs on the accept loop, and on resume the workers may serve
//!   requests queued during the stop first. So the watchdog stamps the boot clock every
//!   [`BEAT`]; a request that finds the stamp older than [`STALL`] locks the session before it
//!   is served, and the watchdog itself locks when it wakes to such a gap (it locks before it
//!   stamps, so a fresh stamp means the lock is done). A suspended machine counts too: the boot
//!   clock runs on through a suspend.
//! - **The socket was swapped.** The socket's path is in a folder the user owns, so a bot can
//!   move the agent's socket aside and put something else there, which then answers
//!   `tapsign lock` with "locked" while the real agent keeps signing on the bot's connection.
//!   The watchdog checks every beat that the path still names the socket the agent serves; when
//!   it does not, it locks, and keeps the session locked while it stays so.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::agent::Agent;
use crate::clock::boot_now;
use crate::session::LockReason;

/// How often the watchdog wakes.
pub const BEAT: Duration = Duration::from_millis(100);
/// A gap in the beat longer than this means the agent did not run. Longer than a busy
/// machine delays a waking thread, and no longer than `tapsign lock` waits for an answer
/// before it signals instead (2 s): a stop long enough to make it signal is always seen.
pub const STALL: Duration = Duration::from_secs(2);

/// The watchdog's last beat, in boot-clock milliseconds; 0 while no watchdog runs (an agent in
/// a unit test, which has none: nothing is judged stalled then).
#[derive(Debug, Default)]
pub struct Beat(AtomicU64);

impl Beat {
    /// How long since the last beat, when that is longer than [`STALL`].
    pub fn stalled(&self) -> Option<Duration> {
        let last = self.0.load(Ordering::SeqCst);
        if last == 0 {
            return None;
        }
        let gap = Duration::from_millis((boot_now().as_millis() as u64).saturating_sub(last));
        (gap > STALL).then_some(gap)
    }

    fn stamp(&self) {
        let now = (boot_now().as_millis() as u64).max(1);
        self.0.store(now, Ordering::SeqCst);
    }
}

/// Why a stall locks, as the audit log and `status` say it.
pub fn stalled_reason(gap: Duration) -> LockReason {
    LockReason::Other(format!(
        "the agent did not run for {:.1} s (stopped, or the machine slept): it may have missed a lock",
        gap.as_secs_f64()
    ))
}

/// Start the watchdog for `agent`, whose socket is `socket` with inode `ino` (`None`: not
/// checked). It ends when the agent is dropped.
pub fn spawn(agent: &std::sync::Arc<Agent>, socket: PathBuf, ino: Option<u64>) {
    agent.beat.stamp();
    let weak: Weak<Agent> = std::sync::Arc::downgrade(agent);
    let spawned = std::thread::Builder::new()
        .name("tapsign-watchdog".into())
        .spawn(move || {
            let mut swapped = false;
            loop {
                std::thread::sleep(BEAT);
                let Some(agent) = weak.upgrade() else { return };
                if let Some(gap) = agent.beat.stalled() {
                    agent.lock(stalled_reason(gap));
                }
                agent.beat.stamp();
                let now = std::fs::symlink_metadata(&socket).map(|m| m.ino()).ok();
                if ino.is_some() && now != ino {
                    if !swapped {
                        say!(
                            "tapsign agent: warning: {} is no longer the agent's socket (moved, removed or replaced): the session is locked, and stays locked while it is so; restart the agent",
                            socket.display()
                        );
                        swapped = true;
                    }
                    agent.lock(LockReason::Other(format!(
                        "the agent's socket {} was moved or replaced",
                        socket.display()
                    )));
                }
            }
        });
    if let Err(e) = spawned {
        say!(
            "tapsign agent: warning: the watchdog thread did not start ({e}): a stop (SIGSTOP) or a swapped socket locks only through SIGCONT"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tapsign_proto::{ErrorCode, Request, Response, SignRequest};

    use super::*;
    use crate::config::Config;
    use crate::credential::{Credential, Exchange};
    use crate::paths::Paths;
    use crate::secret::{SecretBytes, SecretString};
    use crate::session::{Bounds, Client, Session};

    fn unlocked(dir: &std::path::Path) -> Arc<Agent> {
        let agent = Agent::new(
            Paths::under(dir, dir.join("agent.sock")),
            Config::default(),
            false,
        );
        let cred = Credential {
            name: "k".into(),
            exchange: Exchange::Binance,
            api_key: SecretString::new("ak".into()),
            secret: SecretBytes::from_slice(b"sk"),
            passphrase: None,
        };
        let bounds = Bounds {
            ttl: Duration::from_secs(1800),
            idle: Duration::from_secs(600),
            max_signatures: 10,
            per_key: None,
        };
        *agent.session() = Session::unlock(vec![cred], bounds, agent.now(), "test".into());
        agent
    }

    fn account() -> Request {
        Request::Sign(SignRequest {
            key: "k".into(),
            method: "GET".into(),
            path: "/api/v3/account".into(),
            query: String::new(),
            body: String::new(),
            kind: Default::default(),
        })
    }

    #[tokio::test]
    async fn a_request_that_finds_the_beat_stale_locks_before_it_is_served() {
        let dir = tempfile::tempdir().unwrap();
        let agent = unlocked(dir.path());
        let client = Client {
            pid: 1,
            exe: "bot".into(),
        };
        // No watchdog (a beat of 0): nothing is judged stalled, the request is signed.
        assert!(matches!(
            agent.handle(account(), &client).await,
            Response::Signed(_)
        ));
        // A fresh beat: signed.
        agent.beat.stamp();
        assert!(matches!(
            agent.handle(account(), &client).await,
            Response::Signed(_)
        ));
        // The beat stopped longer than STALL ago (the agent was stopped, then continued, and
        // this request was queued meanwhile): locked first, then refused.
        let old = boot_now().saturating_sub(STALL * 3).as_millis() as u64;
        agent.beat.0.store(old.max(1), Ordering::SeqCst);
        match agent.handle(account(), &client).await {
            Response::Error { code, .. } => assert_eq!(code, ErrorCode::Locked),
            other => panic!("served after a stall: {other:?}"),
        }
        let reason = agent.session().lock_reason().map(ToString::to_string);
        assert!(
            reason
                .as_deref()
                .unwrap_or_default()
                .contains("did not run"),
            "{reason:?}"
        );
    }
}
