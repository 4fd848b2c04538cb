//! A real OpenSSH server on a private loopback, for the remote-bot tests.
//!
//! A test calls [`private_network`] first. In the ordinary test process it checks the
//! prerequisites (root, `unshare`, `ip`, `mount`, OpenSSH), then runs the same test binary for
//! just this test under `unshare --net --mount`, and reports that child's result. In the child
//! the loopback is brought up (nothing else is reachable, and nothing outside can reach this
//! sshd) and a tmpfs is mounted on `/run/sshd`, the privilege-separation folder sshd insists
//! on. Without the prerequisites the test skips through `tapsign_skip` (and fails instead
//! when `TAPSIGN_VYK_REQUIRE=1`, as in CI).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MARKER_ENV: &str = "TAPSIGN_SSHD_NETNS";
const SSHD: &str = "/usr/sbin/sshd";
const WAIT: Duration = Duration::from_secs(15);

/// Whether the caller is inside its private network and should run its body. `false`: the
/// test already ran in a child (or was skipped); return.
pub fn private_network() -> bool {
    let inside = std::env::var_os(MARKER_ENV).is_some();
    if !inside && !Path::new(SSHD).is_file() {
        tapsign_skip::skip(&format!("{SSHD} not found: install openssh-server"));
        return false;
    }
    let tools = ["unshare", "ip", "mount", "ssh", "ssh-keygen"];
    if !crate::ns::isolated(MARKER_ENV, &["--net", "--mount"], &tools) {
        return false;
    }
    setup_inside().unwrap_or_else(|e| panic!("namespace setup: {e}"));
    true
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

fn setup_inside() -> Result<(), String> {
    run("ip", &["link", "set", "lo", "up"])?;
    std::fs::create_dir_all("/run/sshd").map_err(|e| format!("mkdir /run/sshd: {e}"))?;
    run(
        "mount",
        &["-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run/sshd"],
    )
}

/// An SSH key pair made for one test (ed25519, no passphrase).
pub struct Key {
    pub private: PathBuf,
    /// The public key line, `ssh-ed25519 AAAA... comment`.
    pub public: String,
}

/// Make a key pair `dir/name`, owned by `uid` (ssh refuses a private key others can read).
pub fn keygen(dir: &Path, name: &str, uid: u32) -> Key {
    let private = dir.join(name);
    run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            name,
            "-f",
            private.to_str().unwrap(),
        ],
    )
    .unwrap();
    std::os::unix::fs::chown(&private, Some(uid), Some(uid)).unwrap();
    let public = std::fs::read_to_string(private.with_extension("pub"))
        .unwrap()
        .trim()
        .to_owned();
    Key { private, public }
}

/// sshd on 127.0.0.1:22 of the private network, with its own host key and config.
pub struct Sshd {
    child: Child,
    pub dir: tempfile::TempDir,
    known_hosts: PathBuf,
    log: PathBuf,
}

impl Sshd {
    /// Start sshd; `authorized_keys` is the whole file every user logs in with, and
    /// `config` lines are appended to a strict base configuration.
    pub fn start(authorized_keys: &str, config: &str) -> Sshd {
        let dir = tempfile::Builder::new()
            .prefix("tapsign-sshd-")
            .tempdir()
            .unwrap();
        // Users other than root (the trader, the bot) reach their files and sockets in here.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let host = keygen(dir.path(), "host_ed25519", 0);
        let keys = dir.path().join("authorized_keys");
        std::fs::write(&keys, format!("{authorized_keys}\n")).unwrap();
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();
        let known_hosts = dir.path().join("known_hosts");
        std::fs::write(&known_hosts, format!("127.0.0.1 {}\n", host.public)).unwrap();
        std::fs::set_permissions(&known_hosts, std::fs::Permissions::from_mode(0o644)).unwrap();
        let conf = dir.path().join("sshd_config");
        let base = format!(
            "ListenAddress 127.0.0.1:22\n\
             HostKey {host}\n\
             PidFile none\n\
             AuthorizedKeysFile {keys}\n\
             # The temp folder's modes are the test's business, not sshd's.\n\
             StrictModes no\n\
             UsePAM no\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             LogLevel VERBOSE\n",
            host = host.private.display(),
            keys = keys.display(),
        );
        std::fs::write(&conf, format!("{base}{config}\n")).unwrap();
        let log = dir.path().join("sshd.log");
        let log_file = std::fs::File::create(&log).unwrap();
        // -D: foreground; -e: log to stderr (the log file).
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let sshd = Sshd {
            child,
            dir,
            known_hosts,
            log,
        };
        sshd.wait_listening();
        sshd
    }

    fn wait_listening(&self) {
        let start = Instant::now();
        while std::net::TcpStream::connect("127.0.0.1:22").is_err() {
            assert!(
                start.elapsed() < WAIT,
                "sshd did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What sshd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `ssh` to `user@127.0.0.1` with `key` and nothing from the environment: no user config,
    /// no agent, only this server's host key trusted.
    pub fn ssh(&self, key: &Key, user: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ssh");
        c.args(["-F", "/dev/null", "-i"])
            .arg(&key.private)
            .args(["-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"])
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(["-o", "ExitOnForwardFailure=yes"])
            .args(args)
            .arg(format!("{user}@127.0.0.1"))
            .stdin(Stdio::null());
        c
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `ssh -N` forward, stopped when dropped.
pub struct Forward {
    child: Child,
    log: PathBuf,
}

impl Forward {
    /// Start `cmd` (an `ssh -N -L/-R ...`) and wait until `socket` accepts connections.
    pub fn start(mut cmd: Command, socket: &Path, log: PathBuf) -> Forward {
        let log_file = std::fs::File::create(&log).unwrap();
        let child = cmd.stdout(Stdio::null()).stderr(log_file).spawn().unwrap();
        let mut fwd = Forward { child, log };
        let start = Instant::now();
        while std::os::unix::net::UnixStream::connect(socket).is_err() {
            if let Some(status) = fwd.child.try_wait().unwrap() {
                panic!("ssh exited ({status}): {}", fwd.log());
            }
            assert!(
                start.elapsed() < WAIT,
                "the forward did not come up: {}",
                fwd.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        fwd
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
