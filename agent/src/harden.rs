//! Process hardening, done before the first secret exists.
//!
//! - Not dumpable: blocks same-uid ptrace and reading `/proc/PID/mem`, and makes the kernel
//!   skip core dumps (systemd-coredump honours it too).
//! - Core size 0: belt and braces for the above.
//! - umask 077: every file and socket the agent creates is private from birth, with no
//!   window between creation and a later chmod.

use rustix::fs::Mode;
use rustix::process::{DumpableBehavior, Resource, Rlimit};

/// What hardening achieved; failures are warnings, reported by the caller.
#[derive(Debug, Default)]
pub struct Report {
    pub warnings: Vec<String>,
}

/// Harden the current process.
pub fn harden_process() -> Report {
    let mut report = Report::default();
    if let Err(e) = rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable) {
        report
            .warnings
            .push(format!("could not mark the process not dumpable: {e}"));
    }
    let zero = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    if let Err(e) = rustix::process::setrlimit(Resource::Core, zero) {
        report
            .warnings
            .push(format!("could not set the core size limit to 0: {e}"));
    }
    rustix::process::umask(Mode::from_raw_mode(0o077));
    report
}

/// Whether the process is currently not dumpable (for `status` and tests).
pub fn is_dumpable() -> bool {
    !matches!(
        rustix::process::dumpable_behavior(),
        Ok(DumpableBehavior::NotDumpable)
    )
}
