//! The end-to-end harness: a private agent per test (its own `TAPSIGN_HOME` and socket in a
//! temp folder), driven through the real `tapsign` binary and the real protocol clients.
//!
//! The binary is the one cargo builds for the workspace (`target/<profile>/tapsign`); set
//! `TAPSIGN_BIN` to test another build. `cargo test --workspace` rebuilds it; after changing the
//! agent or CLI, `cargo test -p tapsign-tests` alone does not: run `cargo build -p tapsign-cli`
//! first.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tapsign_proto::client::Client;

pub mod dbus;
pub mod logind;
pub mod ns;
pub mod sshd;

/// Every test that cannot run on this machine (no root, a program missing) says so through
/// this one helper, which fails the test under `TAPSIGN_VYK_REQUIRE=1` (CI).
pub use tapsign_skip as skip;

/// The lock source `name` in a `status --json` (null when there is none).
pub fn lock_source(status: &serde_json::Value, name: &str) -> serde_json::Value {
    status["lock_sources"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == name))
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

/// The `tapsign` binary under test.
pub fn tapsign_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TAPSIGN_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test binary> -> target/<profile>/tapsign
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(Path::parent).expect("target folder");
    let bin = dir.join("tapsign");
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo test --workspace` builds it, or set TAPSIGN_BIN)",
        bin.display()
    );
    bin
}

/// One test's world: a home folder, a socket path, maybe a running agent.
pub struct World {
    pub home: tempfile::TempDir,
    pub sock: PathBuf,
    agent: Option<Child>,
    agent_log: PathBuf,
    /// Set by [`World::become_user`]: every command runs as this uid, from this binary.
    user: Option<(u32, PathBuf)>,
}

/// The result of a CLI run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            // A signal death (a panic's abort, a crash) is -1: never a pass.
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Assert success and return stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        &self.stdout
    }

    /// Assert the exit code and that stderr mentions `needle`.
    #[track_caller]
    pub fn fails_with(&self, code: i32, needle: &str) {
        assert_eq!(self.code, code, "unexpected exit code: {self:?}");
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}: {self:?}"
        );
        assert!(!self.stderr.contains("panicked"), "a panic: {self:?}");
    }
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

impl World {
    /// `tapsign sign KEY --method GET --path /api/v3/account` through the running agent: a
    /// Binance signature made with `secret` ([`assert_hmac_signed`]).
    pub fn signs_with(&self, key: &str, secret: &[u8]) {
        let out = self.run(
            &["sign", key, "--method", "GET", "--path", "/api/v3/account"],
            "",
        );
        let v = signed(out.ok());
        let query = v["query"].as_str().expect("a query in the answer");
        assert_hmac_signed(query, secret);
    }

    pub fn new() -> World {
        let home = tempfile::Builder::new()
            .prefix("tapsign-test-")
            .tempdir()
            .expect("tempdir");
        let sock = home.path().join("run").join("agent.sock");
        let agent_log = home.path().join("agent.log");
        World {
            home,
            sock,
            agent: None,
            agent_log,
            user: None,
        }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// A `tapsign` command wired to this world (soft token allowed).
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_under(&[], args)
    }

    /// [`World::cmd`], run by `wrapper` (`["strace", "-f", ...]`): `wrapper... tapsign ARGS`.
    pub fn cmd_under(&self, wrapper: &[&str], args: &[&str]) -> Command {
        let mut c = match &self.user {
            None if !wrapper.is_empty() => {
                let mut c = Command::new(wrapper[0]);
                c.args(&wrapper[1..]).arg(tapsign_bin());
                c
            }
            None => Command::new(tapsign_bin()),
            Some((uid, bin)) => {
                use std::os::unix::process::CommandExt;
                let mut c = Command::new(bin);
                c.uid(*uid).gid(*uid);
                c
            }
        };
        c.args(args)
            .env("TAPSIGN_HOME", self.home())
            .env("TAPSIGN_SOCK", &self.sock)
            .env("TAPSIGN_INSECURE_SOFT_TOKEN", "1")
            .env_remove("XDG_RUNTIME_DIR")
            // No desktop buses unless a test brings its own (tests/src/dbus.rs): a developer's
            // real screen lock must not lock test agents, nor tests flood their notifications.
            .env("DBUS_SYSTEM_BUS_ADDRESS", self.no_bus())
            .env("DBUS_SESSION_BUS_ADDRESS", self.no_bus())
            .env_remove("XDG_SESSION_ID");
        c
    }

    fn no_bus(&self) -> String {
        format!("unix:path={}", self.home().join("no-bus").display())
    }

    /// Run `tapsign ARGS` with `stdin` fed in.
    pub fn run(&self, args: &[&str], stdin: &str) -> Run {
        self.run_cmd(self.cmd(args), stdin)
    }

    /// Run `cmd` (from [`World::cmd`] or [`World::cmd_under`]) with `stdin` fed in.
    pub fn run_cmd(&self, mut cmd: Command, stdin: &str) -> Run {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn(&mut cmd).expect("spawn tapsign");
        let mut input = child.stdin.take().expect("stdin");
        // A command that ends (or is killed) before reading its input closes the pipe.
        if let Err(e) = input.write_all(stdin.as_bytes()) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
        }
        drop(input);
        Run::from(child.wait_with_output().expect("wait tapsign"))
    }

    /// Enroll the soft token and store a credential.
    pub fn setup_key(&self, name: &str, exchange: &str, api_key: &str, secret: &str) {
        if !self.home().join("soft-token").exists() {
            self.run(&["token", "add", "--soft"], "").ok();
        }
        self.run(
            &["key", "add", name, "--exchange", exchange],
            &format!("{api_key}\n{secret}\n"),
        )
        .ok();
    }

    /// Start the agent and wait until it answers.
    pub fn start_agent(&mut self) {
        self.start_agent_with(|_| {});
    }

    /// Start the agent with extra settings on its command.
    pub fn start_agent_with(&mut self, f: impl FnOnce(&mut Command)) {
        let log = std::fs::File::create(&self.agent_log).expect("agent log");
        let mut cmd = self.cmd(&["agent"]);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        f(&mut cmd);
        let child = spawn(&mut cmd).expect("spawn agent");
        self.agent = Some(child);
        self.wait_ready();
    }

    /// From now on run the agent and every command as `uid` (root only): the binary is copied
    /// where that user can run it and the home folder is handed over to it. Call it before
    /// anything is created in the world.
    pub fn become_user(&mut self, uid: u32) {
        let bin = self.copy_bin_for_others();
        let status = Command::new("chown")
            .args(["-R", &format!("{uid}:{uid}")])
            .arg(self.home())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "chown the home folder");
        self.user = Some((uid, bin));
    }

    fn copy_bin_for_others(&self) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let bin_dir = self.home().join("bin");
        std::fs::create_dir_all(&bin_dir).expect("bin folder");
        let bin = bin_dir.join("tapsign");
        std::fs::copy(tapsign_bin(), &bin).expect("copy tapsign");
        for p in [bin_dir.as_path(), bin.as_path()] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        bin
    }

    /// Start the agent as another user (root only): the binary is copied where that user can
    /// run it and the home folder is handed over to it.
    pub fn start_agent_as(&mut self, uid: u32) {
        use std::os::unix::process::CommandExt;
        let bin = self.copy_bin_for_others();
        let status = Command::new("chown")
            .args(["-R", &format!("{uid}:{uid}")])
            .arg(self.home())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "chown the home folder");
        let log = std::fs::File::create(&self.agent_log).expect("agent log");
        let mut cmd = Command::new(&bin);
        cmd.arg("agent")
            .env_clear()
            .env("TAPSIGN_HOME", self.home())
            .env("TAPSIGN_SOCK", &self.sock)
            .uid(uid)
            .gid(uid)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = spawn(&mut cmd).expect("spawn agent");
        self.agent = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            // Accepting connections is up, whoever the agent runs as (a protocol client would
            // refuse an agent of another user). The probe sends a frame that is not a message
            // and reads until the agent hangs up, which it does only once the probe's slot is
            // free again: a test that connects next never finds it taken.
            if let Ok(mut probe) = std::os::unix::net::UnixStream::connect(&self.sock) {
                use std::io::{Read, Write};
                let _ = probe.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = probe.write_all(&[0, 0, 0, 1, b'x']);
                let _ = probe.read_to_end(&mut Vec::new());
                return;
            }
            if let Some(status) = self
                .agent
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("the agent exited ({status}): {}", self.agent_log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the agent did not answer within 20 s: {}", self.agent_log());
    }

    /// `tapsign status --json`, parsed.
    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(self.run(&["status", "--json"], "").ok()).expect("status --json")
    }

    /// Poll [`World::status`] until `done` holds, for at most `within`; that status. Fails
    /// naming `what`, with the last status and the agent's log.
    pub fn wait_for_status(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let st = self.status();
            if done(&st) {
                return st;
            }
            assert!(
                start.elapsed() < within,
                "{what}: not within {within:?}: {st:#}\nagent log:\n{}",
                self.agent_log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// What the agent printed to stderr so far.
    pub fn agent_log(&self) -> String {
        std::fs::read_to_string(&self.agent_log).unwrap_or_default()
    }

    /// The agent's log once it says `needle` (at most 10 s, then as it is): the agent writes
    /// its lines from a thread of its own, after whatever said them has answered.
    pub fn agent_said(&self, needle: &str) -> String {
        await_file(&self.agent_log, needle)
    }

    pub fn agent_pid(&self) -> u32 {
        self.agent.as_ref().expect("agent running").id()
    }

    /// Send a signal to the agent and wait for it to exit; returns its exit code.
    pub fn signal_agent(&mut self, sig: &str) -> Option<i32> {
        let pid = self.agent_pid().to_string();
        Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status()
            .expect("kill");
        let mut child = self.agent.take().expect("agent running");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "agent did not stop after {sig}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A protocol client connected to this world's agent.
    pub fn client(&self) -> Client {
        Client::connect(&self.sock, "e2e-test").expect("connect to agent")
    }

    /// The credential names `tapsign key list` shows (its first column).
    pub fn key_names(&self) -> Vec<String> {
        let out = self.run(&["key", "list"], "");
        out.stdout
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    }

    /// Write the config file.
    pub fn config(&self, toml: &str) {
        std::fs::write(self.home().join("config.toml"), toml).expect("write config");
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(mut c) = self.agent.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Spawn `cmd`, retrying while its binary is "busy": a binary copied for another user
/// (`become_user`) is briefly held open for writing by any child another test thread forked
/// during the copy, until that child execs (ETXTBSY).
pub fn spawn(cmd: &mut Command) -> std::io::Result<Child> {
    const ETXTBSY: i32 = 26;
    let start = Instant::now();
    loop {
        match cmd.spawn() {
            Err(e)
                if e.raw_os_error() == Some(ETXTBSY)
                    && start.elapsed() < Duration::from_secs(5) =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// The text of `path` once it holds `needle` (at most 10 s, then as it is).
pub fn await_file(path: &Path, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) || start.elapsed() > Duration::from_secs(10) {
            return text;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Parse the JSON object `tapsign sign` prints.
pub fn signed(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// `query` ends in `&signature=HEX`, the HMAC-SHA256 of what precedes it under `secret`
/// (Binance's scheme), computed here independently of the agent.
pub fn assert_hmac_signed(query: &str, secret: &[u8]) {
    let (payload, sig) = query
        .rsplit_once("&signature=")
        .unwrap_or_else(|| panic!("no signature last in {query:?}"));
    let want = hmac_sha256_hex(secret, payload.as_bytes());
    assert_eq!(sig, want, "{query:?} is not signed with this secret");
}

/// HMAC-SHA256 hex, computed independently of the agent.
pub fn hmac_sha256_hex(key: &[u8], msg: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).expect("hmac key");
    m.update(msg);
    hex::encode(m.finalize().into_bytes())
}

pub use tapsign_skip::is_root;

/// What the at-rest tests do to the keystore's files, as someone who can write them would.
pub mod at_rest {
    use std::os::unix::fs::OpenOptionsExt;
    use std::path::{Path, PathBuf};

    use super::{Run, World};

    /// `tapsign sign KEY` for a Binance account read, through the running agent.
    pub fn sign(w: &World, key: &str) -> Run {
        w.run(
            &["sign", key, "--method", "GET", "--path", "/api/v3/account"],
            "",
        )
    }

    /// The live keystore folder (`keystore/vault-<tag>/`).
    pub fn live(w: &World) -> PathBuf {
        let ks = w.home().join("keystore");
        let mut found: Vec<PathBuf> = std::fs::read_dir(&ks)
            .expect("the keystore folder")
            .map(|e| e.expect("a keystore entry").path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("vault-"))
            })
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        found.remove(0)
    }

    /// The only keyslot file of the live keystore, and its id (the file's stem).
    pub fn only_keyslot(w: &World) -> (PathBuf, String) {
        let dir = live(w).join("keyslots");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("the keyslots folder")
            .map(|e| e.expect("a keyslot entry").path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let file = files.remove(0);
        let id = file
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a keyslot file's id")
            .to_owned();
        (file, id)
    }

    /// A credential's file in the live keystore.
    pub fn cred_file(w: &World, name: &str) -> PathBuf {
        live(w).join("credentials").join(format!("{name}.json"))
    }

    /// Append `event` to the audit log as a line that continues the chain, as anyone who can
    /// write the log can.
    pub fn append_chained(w: &World, event: serde_json::Value) {
        use sha2::Digest;
        let path = w.home().join("audit.log");
        let text = std::fs::read_to_string(&path).expect("the audit log");
        let last = text.lines().last().expect("a line in the log");
        let seq = serde_json::from_str::<serde_json::Value>(last).expect("a JSON line")["seq"]
            .as_u64()
            .expect("a seq");
        let line = serde_json::json!({
            "seq": seq + 1,
            "time": "2026-01-01T00:00:00.000Z",
            "prev": hex::encode(sha2::Sha256::digest(last.as_bytes())),
            "event": event,
        });
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("the audit log, for appending");
        std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()).expect("the line");
    }

    /// Rewrite `manifest.json` through `edit` with its checksum recomputed (not a MAC: anyone
    /// can), in the exact form tapsign writes; its MAC is left as it was.
    pub fn forge_manifest(w: &World, edit: impl FnOnce(&mut serde_json::Value)) {
        use sha2::Digest;
        let path = w.home().join("keystore/manifest.json");
        let text = std::fs::read(&path).expect("the manifest");
        let mut m: serde_json::Value = serde_json::from_slice(&text).expect("a JSON manifest");
        edit(&mut m);
        m["checksum"] = "".into();
        let body = serde_json::to_vec_pretty(&m).expect("the manifest, serialized");
        m["checksum"] = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&body))).into();
        let mut out = serde_json::to_vec_pretty(&m).expect("the manifest, serialized");
        out.push(b'\n');
        put_back(&path, &out);
    }

    /// Write a file back the way a backup restore would: private, like the original.
    pub fn put_back(path: &Path, bytes: &[u8]) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .expect("the file to put back");
        f.write_all(bytes).expect("the bytes put back");
    }
}
