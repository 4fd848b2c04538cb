//! Work that blocks (a touch, reading the keystore's folder for `status`, writing a Kraken
//! nonce mark), run on a thread of its own while the runtime's workers go on serving.
//!
//! Not tokio's `spawn_blocking`: that panics when the kernel refuses a thread, and any process
//! of the user can make it refuse for good (`prlimit --nproc=1` on the agent lowers the hard
//! limit too, which the agent cannot raise back). Each `status` and `unlock` then died in a
//! panic, the client read "the connection was closed" with no reason, and the open session
//! went on signing (red-team round 21). Here a refused thread is an error, which the agent
//! answers with, and locks for ([`crate::agent::Agent::worker_failed`]), naming the limit that
//! most likely refused it ([`thread_limit`]).

use std::fmt;
use std::path::{Path, PathBuf};

/// Why blocking work did not run to its end.
#[derive(Debug)]
pub enum WorkerError {
    /// The kernel refused a thread: the agent's process limit (RLIMIT_NPROC) is reached, or
    /// the machine is out of threads.
    Refused(std::io::Error),
    /// The thread ended without an answer (the work panicked: a bug). Unlike a refused
    /// thread, this locks nothing: the work never holds the session (an unlock's worker returns
    /// what it opened, and a panic drops and wipes it), the session's bounds are kept by the
    /// agent itself, and the next `status` or `unlock` gets a thread of its own, so the open
    /// session stays as any refused unlock leaves it. Locking would let whatever makes the
    /// work panic end the trader's session at will. Card answers that panicked the `yubikey`
    /// crate are errors before they get here (`token::readers`; red-team round 25).
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

/// What most likely made the kernel refuse a thread, read when it did: the limit the error
/// names, so the trader raises the right one (red-team round 21: every refusal blamed the
/// process limit, also when a cgroup's task limit was the cause).
#[derive(Debug, PartialEq, Eq)]
pub enum ThreadLimit {
    /// The agent's cgroup, or one above it, holds as many tasks as its `pids.max` allows (a
    /// systemd unit's `TasksMax=`; a process of the user may write it in a delegated tree).
    Cgroup { file: PathBuf, max: u64 },
    /// The user's process limit (RLIMIT_NPROC), when it is low enough to be the cause.
    Processes { soft: u64 },
    /// Neither: the machine is out of threads, or a limit the agent cannot read.
    Machine { soft: Option<u64> },
}

/// Below this, a process limit is taken for one lowered on purpose (Debian's default is in
/// the tens of thousands).
const LOW_NPROC: u64 = 4096;

/// [`ThreadLimit`] as the agent's own files say it.
pub fn thread_limit() -> ThreadLimit {
    read_thread_limit(
        Path::new("/proc/self/cgroup"),
        Path::new("/sys/fs/cgroup"),
        Path::new("/proc/self/limits"),
    )
}

fn read_thread_limit(cgroup: &Path, root: &Path, limits: &Path) -> ThreadLimit {
    let number =
        |file: &Path| -> Option<u64> { std::fs::read_to_string(file).ok()?.trim().parse().ok() };
    // cgroup v2 names the agent's group on the line `0::/user.slice/...`; every group above
    // it binds as well.
    let own = std::fs::read_to_string(cgroup).ok().and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix("0::"))
            .map(|rel| root.join(rel.trim().trim_start_matches('/')))
    });
    if let Some(mut dir) = own {
        loop {
            let file = dir.join("pids.max");
            if let (Some(max), Some(current)) = (number(&file), number(&dir.join("pids.current"))) {
                // One short of the limit as well: the thread refused was the one more.
                if current + 1 >= max {
                    return ThreadLimit::Cgroup { file, max };
                }
            }
            if dir == root || !dir.pop() || !dir.starts_with(root) {
                break;
            }
        }
    }
    let soft = std::fs::read_to_string(limits).ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("Max processes"))?;
        line["Max processes".len()..]
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    });
    match soft {
        Some(soft) if soft < LOW_NPROC => ThreadLimit::Processes { soft },
        soft => ThreadLimit::Machine { soft },
    }
}

impl fmt::Display for ThreadLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThreadLimit::Cgroup { file, max } => write!(
                f,
                "the agent's cgroup is at its task limit ({} is {max}: a systemd unit's TasksMax=, `systemctl --user show tapsign-agent -p TasksMax` and your user slice's, or a process of yours that wrote that file)",
                file.display()
            ),
            ThreadLimit::Processes { soft } => write!(
                f,
                "its process limit (RLIMIT_NPROC) is {soft}, probably lowered by a process of yours (prlimit --nproc; `grep processes /proc/<agent pid>/limits` shows it)"
            ),
            ThreadLimit::Machine { soft } => {
                f.write_str(
                    "the machine may be out of threads (kernel.threads-max, kernel.pid_max)",
                )?;
                match soft {
                    Some(soft) => write!(
                        f,
                        ", or your processes are at their limit ({soft}, RLIMIT_NPROC)"
                    ),
                    None => Ok(()),
                }
            }
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

    /// Red-team round 21's left: a refused thread blamed the process limit whatever refused
    /// it. A full cgroup (here one above the agent's) is named by its file, a lowered process
    /// limit by its value, and neither as the machine's threads.
    #[test]
    fn a_refused_thread_names_the_limit_that_refused_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cgroup");
        let own = root.join("user.slice/user-1000.slice/app.slice/tapsign-agent.service");
        std::fs::create_dir_all(&own).unwrap();
        let write = |p: &Path, text: &str| std::fs::write(p, text).unwrap();
        let cgroup = dir.path().join("cgroup-of-self");
        write(
            &cgroup,
            "0::/user.slice/user-1000.slice/app.slice/tapsign-agent.service\n",
        );
        let limits = dir.path().join("limits");
        let with_nproc = |soft: &str| {
            format!(
                "Limit                     Soft Limit           Hard Limit           Units\nMax cpu time              unlimited            unlimited            seconds\nMax processes             {soft}                {soft}                processes\n"
            )
        };
        write(&limits, &with_nproc("63419"));
        write(&own.join("pids.max"), "max\n");
        write(&own.join("pids.current"), "9\n");
        let slice = root.join("user.slice/user-1000.slice");
        write(&slice.join("pids.max"), "40\n");
        write(&slice.join("pids.current"), "40\n");
        let limit = read_thread_limit(&cgroup, &root, &limits);
        assert_eq!(
            limit,
            ThreadLimit::Cgroup {
                file: slice.join("pids.max"),
                max: 40
            }
        );
        assert!(limit.to_string().contains("TasksMax"), "{limit}");
        write(&slice.join("pids.current"), "12\n");
        write(&limits, &with_nproc("1"));
        let limit = read_thread_limit(&cgroup, &root, &limits);
        assert_eq!(limit, ThreadLimit::Processes { soft: 1 });
        assert!(limit.to_string().contains("RLIMIT_NPROC) is 1"), "{limit}");
        write(&limits, &with_nproc("63419"));
        let limit = read_thread_limit(&cgroup, &root, &limits);
        assert_eq!(limit, ThreadLimit::Machine { soft: Some(63419) });
        // No cgroup v2 and no limits to read.
        let none = dir.path().join("none");
        assert_eq!(
            read_thread_limit(&none, &root, &none),
            ThreadLimit::Machine { soft: None }
        );
    }

    #[tokio::test]
    async fn a_panic_in_the_work_is_an_error_not_a_panic_here() {
        let r: Result<(), _> = run("test", || panic!("in the worker")).await;
        assert!(matches!(r, Err(WorkerError::Died)));
    }
}
