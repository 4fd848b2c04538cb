//! Work that blocks (a touch, reading the keystore's folder for `status`, writing a Kraken
//! nonce mark), run on a thread of its own while the runtime's workers go on serving.
//!
//! Not tokio's `spawn_blocking`: that panics when the kernel refuses a thread, and any process
//! of the user can make it refuse for good (`prlimit --nproc=1` on the agent lowers the hard
//! limit too, which the agent cannot raise back). Each `status` and `unlock` then died in a
//! panic, the client read "the connection was closed" with no reason, and the open session
//! went on signing (red-team round 21). Here a refused thread is an error, which the agent
//! answers with, and locks for ([`crate::agent::Agent::thread_refused`]).

use std::fmt;

/// Why blocking work did not run to its end.
#[derive(Debug)]
pub enum WorkerError {
    /// The kernel refused a thread: the agent's process limit (RLIMIT_NPROC) is reached, or
    /// the machine is out of threads.
    Refused(std::io::Error),
    /// The thread ended without an answer (the work panicked: a bug).
    Died,
}

impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerError::Refused(e) => write!(f, "the agent cannot start a thread ({e})"),
            WorkerError::Died => f.write_str("the agent's worker thread died (a bug)"),
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Tests: refuse this thread's workers, as a lowered RLIMIT_NPROC does.
    pub static REFUSE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `work` on a thread of its own (named `name`) and wait for its result without holding
/// a runtime worker. A thread costs some tens of microseconds to start, which only a touch,
/// a `status` or a nonce reservation (once per block of nonces) pays.
pub async fn run<T, F>(name: &str, work: F) -> Result<T, WorkerError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    #[cfg(test)]
    if REFUSE.with(std::cell::Cell::get) {
        // What clone(2) says at the limit.
        return Err(WorkerError::Refused(rustix::io::Errno::AGAIN.into()));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    // Inside the runtime, as `spawn_blocking` ran it: the work may hand tasks to it (the touch
    // prompt's desktop notification is sent by a task; without the runtime it was dropped).
    let runtime = tokio::runtime::Handle::try_current().ok();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _inside = runtime.as_ref().map(tokio::runtime::Handle::enter);
            // The waiter may have gone (its connection's task was dropped): nothing to tell.
            let _ = tx.send(work());
        })
        .map_err(WorkerError::Refused)?;
    rx.await.map_err(|_| WorkerError::Died)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_another_thread_and_answers() {
        let here = std::thread::current().id();
        let there = run("test", std::thread::current).await.unwrap();
        assert_ne!(there.id(), here);
        assert_eq!(there.name(), Some("test"));
    }

    /// The work runs inside the runtime it was asked from, as `spawn_blocking`'s did: the
    /// touch prompt is sent by a task it spawns, and outside the runtime it was dropped (the
    /// whole suite caught it: no "touch your token" notification).
    #[tokio::test]
    async fn work_can_hand_tasks_to_the_runtime() {
        let spawned = run("test", || {
            tokio::runtime::Handle::try_current()
                .map(|rt| rt.spawn(async { 7 }))
                .ok()
        })
        .await
        .unwrap();
        assert_eq!(spawned.expect("no runtime in the worker").await.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_panic_in_the_work_is_an_error_not_a_panic_here() {
        let r: Result<(), _> = run("test", || panic!("in the worker")).await;
        assert!(matches!(r, Err(WorkerError::Died)));
    }
}
