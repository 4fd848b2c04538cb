//! Where the agent's socket lives.

use std::path::{Path, PathBuf};

/// The environment variable that overrides the socket path.
pub const SOCK_ENV: &str = "TAPSIGN_SOCK";

/// The socket path: `$TAPSIGN_SOCK`, else `$XDG_RUNTIME_DIR/tapsign/agent.sock`, else
/// `/run/user/$UID/tapsign/agent.sock` when that runtime folder exists, else
/// `$TMPDIR/tapsign-$UID/agent.sock` (the agent creates that folder 0700 and checks its owner).
pub fn default_socket_path() -> PathBuf {
    if let Some(p) = std::env::var_os(SOCK_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(rt) = std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        return PathBuf::from(rt).join("tapsign").join("agent.sock");
    }
    let uid = current_uid();
    let run_user = PathBuf::from(format!("/run/user/{uid}"));
    if run_user.is_dir() {
        return run_user.join("tapsign").join("agent.sock");
    }
    std::env::temp_dir()
        .join(format!("tapsign-{uid}"))
        .join("agent.sock")
}

fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of /proc/self is our real uid: no libc call needed.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
}

/// The file next to the socket where the agent serving it keeps its pid, locked (`flock`)
/// while it runs: `tapsign lock` signals the agent through it when every connection slot is
/// taken. The socket's peer credentials cannot say which process that is: they name whoever
/// called `listen`, which is systemd when it passes the socket.
pub fn pid_file(socket: &Path) -> PathBuf {
    let mut name = socket
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".pid");
    socket.with_file_name(name)
}
