//! A process `tapsign lock` is about to signal, held by a pidfd from before the checks that
//! name it a tapsign agent of ours until the signal.

use std::os::fd::OwnedFd;

use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, Signal};

/// A process found by its pid (a lock's holder in /proc/locks, a socket's listener), held by a
/// pidfd (pidfd_open(2)) while it is checked, and signalled through it (pidfd_send_signal(2)).
/// A pid is only a number: between the read that found it and kill(2), the process can exit and
/// the number go to another process of the user's, which the checks then read and the signal
/// then hits (red-team round 27). A pidfd names one process and never the next owner of its
/// pid: the signal reaches the process that was checked, or none.
pub(super) struct Held {
    pub(super) pid: u32,
    /// `None` where there is no pidfd to be had: the kernel lacks pidfd_open (ENOSYS, before
    /// Linux 5.3), or a seccomp filter refuses a call it does not know (EPERM, in some
    /// containers). The signal then goes by the pid's number, as kill(2) always did, with the
    /// race above: a lock not sent at all would be worse.
    fd: Option<OwnedFd>,
}

impl Held {
    /// `pid`, held, if a process has it and `identifies` then says it is the one sought. The
    /// checks run while the pidfd is open: should the process exit and its pid go to another
    /// one that passes them, the pidfd still names the one that exited, and nothing is sent.
    pub(super) fn checked(pid: u32, identifies: impl FnOnce(u32) -> bool) -> Option<Held> {
        let number = Pid::from_raw(i32::try_from(pid).ok()?)?;
        let fd = match rustix::process::pidfd_open(number, PidfdFlags::empty()) {
            Ok(fd) => Some(fd),
            // No process has the pid (any more).
            Err(Errno::SRCH) | Err(Errno::INVAL) => return None,
            // ENOSYS, EPERM, or out of descriptors: by number (see `fd`).
            Err(_) => None,
        };
        identifies(pid).then_some(Held { pid, fd })
    }

    /// Send SIGHUP (a lock) to the process checked.
    pub(super) fn hup(&self) -> Result<(), String> {
        let pid = self.pid;
        let sent = match &self.fd {
            Some(fd) => rustix::process::pidfd_send_signal(fd, Signal::HUP),
            None => Pid::from_raw(pid as i32)
                .ok_or(Errno::SRCH)
                .and_then(|number| rustix::process::kill_process(number, Signal::HUP)),
        };
        sent.map_err(|e| match e {
            Errno::SRCH => format!(
                "the agent (pid {pid}) exited before it was sent SIGHUP, and nothing was sent: run `tapsign status` to see whether another one runs"
            ),
            e => format!("sending SIGHUP to the agent (pid {pid}): {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command};
    use std::time::{Duration, Instant};

    /// Set in the test's second run, inside a pid namespace of its own.
    const INSIDE: &str = "TAPSIGN_TEST_INSIDE_PID_NAMESPACE";

    /// Red-team round 27: `tapsign lock` read an agent's pid from /proc, checked the process
    /// behind it, and sent SIGHUP by number: a pid freed and taken by another process of the
    /// user's in between was the one checked and signalled. Here that happens for real, in the
    /// middle of the checks: the agent held exits, and a stand-in that passes them (it calls
    /// itself `tapsign agent`) is given its very pid, which a pid namespace of the test's own
    /// allows (`ns_last_pid`); the stand-in must not be signalled. The test runs itself again
    /// in that namespace (`unshare`, as root there through a user namespace); where user
    /// namespaces are not allowed it says so through the tests' one skip helper.
    #[test]
    fn a_pid_taken_by_another_process_while_it_is_checked_is_not_signalled() {
        if std::env::var_os(INSIDE).is_none() {
            return run_inside_a_pid_namespace(
                "commands::held::tests::a_pid_taken_by_another_process_while_it_is_checked_is_not_signalled",
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let stand_in = dir.path().join("tapsign");
        std::os::unix::fs::symlink("/bin/sh", &stand_in).unwrap();
        let mut agent = Command::new("sleep").arg("600").spawn().unwrap();
        let pid = agent.id();
        let mut taker: Option<Child> = None;
        let me = rustix::process::getuid().as_raw();
        let held = Held::checked(pid, |pid| {
            // The agent exits and is reaped; its pid goes to the stand-in.
            agent.kill().unwrap();
            agent.wait().unwrap();
            std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
            let t = hup_default()
                .arg(&stand_in)
                .args(["-c", "while :; do sleep 1; done", "agent"])
                .spawn()
                .unwrap();
            assert_eq!(t.id(), pid, "the stand-in did not get the agent's pid");
            taker = Some(t);
            // It passes the checks `tapsign lock` makes (sh names itself after the link).
            wait_for(|| super::super::lock::is_agent(pid, me));
            true
        })
        .expect("held");
        let mut taker = taker.unwrap();
        let err = held.hup().unwrap_err();
        assert!(err.contains("exited before it was sent SIGHUP"), "{err}");
        // A SIGHUP sent to it would end it within moments (sh does not catch it).
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            taker.try_wait().unwrap().is_none(),
            "the process that took the pid was signalled"
        );
        taker.kill().unwrap();
        taker.wait().unwrap();
    }

    /// The process held is signalled while it runs.
    #[test]
    fn a_held_process_is_signalled() {
        let mut child = hup_default().args(["sleep", "600"]).spawn().unwrap();
        // Until env has exec'd sleep, SIGHUP may still be ignored as inherited: wait for it.
        let comm = format!("/proc/{}/comm", child.id());
        wait_for(|| std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() == "sleep"));
        let held = Held::checked(child.id(), |_| true).expect("held");
        held.hup().unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(Signal::HUP.as_raw()));
        // No process, no hold; and what the checks refuse is not held either.
        assert!(Held::checked(child.id(), |_| true).is_none());
        assert!(Held::checked(std::process::id(), |_| false).is_none());
    }

    /// A command line that runs its program with SIGHUP's default action (GNU `env`): an
    /// ignored SIGHUP is inherited across exec, and a test run under `nohup` (a CI runner's
    /// shell, say) would then see no process end by SIGHUP, signalled or not: the first test
    /// failed so, and the second passed whatever was signalled. env resets it before it execs
    /// the program, so a test signals only once the program runs.
    fn hup_default() -> Command {
        let mut cmd = Command::new("env");
        cmd.arg("--default-signal=HUP");
        cmd
    }

    fn wait_for(done: impl Fn() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(10), "timed out");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Run the test `name` of this binary again, alone, as root of a user namespace in pid and
    /// mount namespaces of its own (a /proc of its own, whose `ns_last_pid` it may write).
    fn run_inside_a_pid_namespace(name: &str) {
        let probe = Command::new("unshare")
            .args(["--user", "--map-root-user", "--pid", "--fork", "--mount"])
            .args(["--mount-proc", "true"])
            .output();
        if !probe.is_ok_and(|o| o.status.success()) {
            // Under TAPSIGN_VYK_REQUIRE=1 (CI, as root) a refusal fails the test.
            tapsign_skip::skip("no user and pid namespaces here (`unshare` refused)");
            return;
        }
        let out = Command::new("unshare")
            .args(["--user", "--map-root-user", "--pid", "--fork", "--mount"])
            .arg("--mount-proc")
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(INSIDE, "1")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{said}");
        assert!(said.contains("1 passed"), "{said}");
    }
}
