//! Runs a test against a private PC/SC stack: its own `pcscd` with the vpcd reader driver,
//! in its own mount, network and PID namespaces, with one or two virtual YubiKeys inserted.
//!
//! A test calls [`run`]. The first call happens in the ordinary test process: it checks the
//! prerequisites (root, `unshare`, `ip`, `pcscd`, vpcd), then re-executes the same test binary
//! for just this test under `unshare --mount --net --pid --fork`, with a marker variable set.
//! In that child, [`run`] mounts a tmpfs on `/run/pcscd`, starts `pcscd`, plugs the keys in,
//! waits until PC/SC reports each card present, and runs the body. Each test thus gets its
//! own stack and tests can run in parallel; the PID namespace takes `pcscd` down with the
//! test even if the test process dies. Without the prerequisites the test skips through
//! `tapsign_skip` (and fails instead, if `TAPSIGN_VYK_REQUIRE=1`).
//!
//! ```no_run
//! use std::time::Duration;
//! use tapsign_vyk::{Config, TouchMode, harness};
//!
//! #[test]
//! fn unwrap_needs_a_touch() {
//!     let key = Config { version: [5, 7, 1], serial: 1234, ..Config::default() };
//!     harness::run(&[key], |stack| {
//!         // Code under test talks to the key through PC/SC as usual, e.g.
//!         // `yubikey::YubiKey::open_by_serial(Serial(1234))`, on reader
//!         // `stack.reader_name(0)`.
//!         let touch = stack.key(0).touch();
//!         touch.set_mode(TouchMode::Hold { timeout: Duration::from_secs(10) });
//!         // ... start the operation on another thread, then:
//!         assert!(touch.wait_for_request(Duration::from_secs(5)));
//!         touch.touch();
//!         assert_eq!(touch.touches(), 1);
//!         stack.pull(0).unwrap(); // reader reports EMPTY
//!         stack.insert(0).unwrap(); // PRESENT again, session state gone
//!     });
//! }
//! ```

use std::ffi::CString;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::device::VirtualYubiKey;
use crate::piv::Config;

/// Set in the re-executed child to the name of the test it runs.
pub const MARKER_ENV: &str = "TAPSIGN_VYK_STACK";
/// Passes the vpcd driver path from the parent's checks to the child.
const VPCD_ENV: &str = "TAPSIGN_VYK_VPCD";
/// vpcd's first reader port (0x8C7B); the second reader is the next port.
pub const VPCD_PORT: u16 = 0x8C7B;
/// The friendly name pcscd gives the two vpcd readers, suffixed " 00 00" and " 00 01".
pub const READER_PREFIX: &str = "Virtual PCD";
const RUN_DIR: &str = "/run/pcscd";
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// A running stack: pcscd and the virtual keys. Dropping it stops both.
pub struct Stack {
    keys: Vec<VirtualYubiKey>,
    /// The running pcscd (replaced when a test starts it again).
    pcscd: std::sync::Mutex<Child>,
    conf: PathBuf,
    log: PathBuf,
}

/// Presence of a card as PC/SC reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardState {
    Present,
    Empty,
}

/// Runs `body` against a fresh stack with one virtual key per entry of `keys` (one or two).
/// Call it as the whole body of a `#[test]`; it finds the test's name from the thread name
/// libtest gives each test.
pub fn run(keys: &[Config], body: impl FnOnce(&Stack)) {
    run_with_tools(&[], keys, body);
}

/// Like [`run`], but skips (with a reason) unless every program in `tools` is installed:
/// for checks that use independent clients such as `yubico-piv-tool` or `ykman`.
pub fn run_with_tools(tools: &[&str], keys: &[Config], body: impl FnOnce(&Stack)) {
    assert!((1..=2).contains(&keys.len()), "vpcd has two readers");
    let current = std::thread::current();
    let name = current
        .name()
        .filter(|n| *n != "main")
        .expect("harness::run must be called from a libtest test thread");
    if let Some(tool) = tools.iter().find(|t| which(t).is_none()) {
        return tapsign_skip::skip(&format!(
            "`{tool}` not installed (see scripts/packages.txt)"
        ));
    }
    match std::env::var(MARKER_ENV) {
        Ok(marker) if marker == name => {
            let stack = Stack::start(keys).unwrap_or_else(|e| panic!("stack setup: {e}"));
            body(&stack);
        }
        Ok(marker) => panic!("inside the stack for {marker:?}, but {name:?} ran"),
        Err(_) => reexec(name),
    }
}

pub use tapsign_skip::which;

/// The vpcd driver: the usual path, else wherever `dpkg -L vsmartcard-vpcd` says.
fn vpcd_driver() -> Option<PathBuf> {
    let usual = PathBuf::from("/usr/lib/pcsc/drivers/serial/libifdvpcd.so");
    if usual.is_file() {
        return Some(usual);
    }
    let out = Command::new("dpkg")
        .args(["-L", "vsmartcard-vpcd"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .find(|p| p.file_name().is_some_and(|n| n == "libifdvpcd.so") && p.is_file())
}

/// Why the stack cannot run here, if it cannot.
fn missing_prerequisite() -> Result<PathBuf, String> {
    if !rustix::process::geteuid().is_root() {
        return Err("needs root for mount/network namespaces (CI runs as root)".into());
    }
    for tool in ["unshare", "ip", "mount", "pcscd"] {
        if which(tool).is_none() {
            return Err(format!(
                "`{tool}` not found (install: see scripts/packages.txt)"
            ));
        }
    }
    let driver =
        vpcd_driver().ok_or("vpcd driver not found (install the vsmartcard-vpcd package)")?;
    let probe = Command::new("unshare")
        .args(["--mount", "--net", "--pid", "--fork", "true"])
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    if !probe.status.success() {
        return Err(format!(
            "namespaces not permitted here: {}",
            String::from_utf8_lossy(&probe.stderr).trim()
        ));
    }
    Ok(driver)
}

fn reexec(name: &str) {
    let driver = match missing_prerequisite() {
        Ok(d) => d,
        Err(reason) => return tapsign_skip::skip(&reason),
    };
    tapsign_skip::rerun_in_namespaces(
        name,
        &["--mount", "--net", "--pid"],
        &[(MARKER_ENV, name.as_ref()), (VPCD_ENV, driver.as_os_str())],
    );
}

fn sh(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Stack {
    /// Inside the namespaces: loopback up, private /run/pcscd, pcscd, keys, wait for cards.
    fn start(keys: &[Config]) -> Result<Stack, String> {
        let driver = std::env::var(VPCD_ENV).map_err(|_| format!("{VPCD_ENV} unset"))?;
        sh("ip", &["link", "set", "lo", "up"])?;
        std::fs::create_dir_all(RUN_DIR).map_err(|e| format!("mkdir {RUN_DIR}: {e}"))?;
        sh(
            "mount",
            &["-t", "tmpfs", "-o", "mode=0755", "tmpfs", RUN_DIR],
        )?;
        let dir = Path::new(RUN_DIR).join("vyk");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let conf = dir.join("reader.conf");
        let conf_text = format!(
            "FRIENDLYNAME \"{READER_PREFIX}\"\nDEVICENAME /dev/null:0x{VPCD_PORT:04X}\n\
             LIBPATH {driver}\nCHANNELID 0x{VPCD_PORT:04X}\n"
        );
        std::fs::write(&conf, conf_text).map_err(|e| e.to_string())?;
        let log = dir.join("pcscd.log");
        let pcscd = spawn_pcscd(&conf, &log)?;
        let mut stack = Stack {
            keys: Vec::new(),
            pcscd: std::sync::Mutex::new(pcscd),
            conf,
            log,
        };
        for (i, config) in keys.iter().enumerate() {
            let port = VPCD_PORT + u16::try_from(i).unwrap_or(0);
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let key = VirtualYubiKey::spawn(config.clone(), addr).map_err(|e| e.to_string())?;
            stack.keys.push(key);
        }
        for i in 0..keys.len() {
            stack
                .wait_card(i, CardState::Present, READY_TIMEOUT)
                .map_err(|e| format!("{e}\n--- pcscd log ---\n{}", stack.pcscd_log()))?;
        }
        Ok(stack)
    }

    /// The virtual key in reader `i` (0 or 1).
    pub fn key(&self, i: usize) -> &VirtualYubiKey {
        &self.keys[i]
    }

    /// PC/SC name of reader `i`: "Virtual PCD 00 00" or "Virtual PCD 00 01".
    pub fn reader_name(&self, i: usize) -> String {
        format!("{READER_PREFIX} 00 {i:02}")
    }

    /// Pulls key `i` and waits until PC/SC reports its reader empty.
    pub fn pull(&self, i: usize) -> Result<(), String> {
        self.keys[i].pull();
        self.wait_card(i, CardState::Empty, READY_TIMEOUT)
    }

    /// Inserts key `i` again and waits until PC/SC reports the card present.
    pub fn insert(&self, i: usize) -> Result<(), String> {
        self.keys[i].insert();
        self.wait_card(i, CardState::Present, READY_TIMEOUT)
    }

    /// Stop this stack's pcscd (SIGTERM to the child the harness started, nothing else) and
    /// wait until its socket is gone, for tests of a dead PC/SC daemon.
    pub fn stop_pcscd(&self) -> Result<(), String> {
        let pid = self.pcscd().id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("kill -TERM {pid} failed"));
        }
        let socket = Path::new(RUN_DIR).join("pcscd.comm");
        let deadline = Instant::now() + READY_TIMEOUT;
        while socket.exists() {
            if Instant::now() > deadline {
                return Err("pcscd did not stop".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Kill this stack's pcscd with SIGKILL, as a crash or the OOM killer would: no cleanup
    /// runs, its clients' calls fail where they are.
    pub fn kill_pcscd(&self) -> Result<(), String> {
        let mut pcscd = self.pcscd();
        pcscd.kill().map_err(|e| format!("kill pcscd: {e}"))?;
        pcscd.wait().map_err(|e| format!("wait for pcscd: {e}"))?;
        Ok(())
    }

    /// Stop this stack's pcscd with SIGSTOP (`kill -STOP`, or a pcscd hung in a driver): its
    /// socket stays, its clients' calls wait for answers that do not come. Resumed by the
    /// guard's drop (SIGCONT), so the stack can be taken down.
    pub fn pause_pcscd(&self) -> Result<PausedPcscd<'_>, String> {
        self.signal_pcscd("-STOP")?;
        Ok(PausedPcscd(self))
    }

    fn signal_pcscd(&self, signal: &str) -> Result<(), String> {
        let pid = self.pcscd().id().to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill {signal} {pid} failed"))
        }
    }

    /// Start pcscd again after [`Stack::stop_pcscd`] or [`Stack::kill_pcscd`], and wait until
    /// every key is back in its reader (the keys reconnect by themselves).
    pub fn start_pcscd(&self) -> Result<(), String> {
        {
            let mut pcscd = self.pcscd();
            // What a killed pcscd left: its socket and pid file would stop the new one.
            for stale in ["pcscd.comm", "pcscd.pid"] {
                let _ = std::fs::remove_file(Path::new(RUN_DIR).join(stale));
            }
            *pcscd = spawn_pcscd(&self.conf, &self.log)?;
        }
        for i in 0..self.keys.len() {
            self.wait_card(i, CardState::Present, READY_TIMEOUT)
                .map_err(|e| format!("{e}\n--- pcscd log ---\n{}", self.pcscd_log()))?;
        }
        Ok(())
    }

    fn pcscd(&self) -> std::sync::MutexGuard<'_, Child> {
        self.pcscd.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What pcscd logged so far (for failure messages).
    pub fn pcscd_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until PC/SC reports reader `i` in `want`, polling pcscd with a bounded timeout.
    pub fn wait_card(&self, i: usize, want: CardState, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let reader = CString::new(self.reader_name(i)).map_err(|e| e.to_string())?;
        let mut last = String::from("pcscd not reachable");
        while Instant::now() < deadline {
            match card_state(&reader) {
                Ok(state) if state == want => return Ok(()),
                Ok(state) => last = format!("{state:?}"),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let mut msg = String::new();
        let _ = write!(
            msg,
            "{} not {want:?} after {timeout:?} (last: {last})",
            self.reader_name(i)
        );
        Err(msg)
    }
}

/// Start pcscd on `conf`, appending to `log`.
fn spawn_pcscd(conf: &Path, log: &Path) -> Result<Child, String> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| e.to_string())?;
    let log_err = log_file.try_clone().map_err(|e| e.to_string())?;
    Command::new(which("pcscd").ok_or("pcscd vanished")?)
        .arg("--foreground")
        .arg("--config")
        .arg(conf)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("start pcscd: {e}"))
}

/// One look at a reader's state through PC/SC.
fn card_state(reader: &CString) -> Result<CardState, String> {
    let ctx = pcsc::Context::establish(pcsc::Scope::System).map_err(|e| e.to_string())?;
    let mut states = [pcsc::ReaderState::new(reader.clone(), pcsc::State::UNAWARE)];
    ctx.get_status_change(Duration::from_millis(0), &mut states)
        .map_err(|e| e.to_string())?;
    let s = states[0].event_state();
    if s.contains(pcsc::State::PRESENT) && !s.contains(pcsc::State::MUTE) {
        Ok(CardState::Present)
    } else if s.contains(pcsc::State::EMPTY) {
        Ok(CardState::Empty)
    } else {
        Err(format!("reader state {s:?}"))
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Keys first, so their threads stop reconnecting; then pcscd.
        self.keys.clear();
        let mut pcscd = self.pcscd();
        let _ = pcscd.kill();
        let _ = pcscd.wait();
    }
}

/// A pcscd stopped with SIGSTOP ([`Stack::pause_pcscd`]); dropping it sends SIGCONT.
pub struct PausedPcscd<'a>(&'a Stack);

impl Drop for PausedPcscd<'_> {
    fn drop(&mut self) {
        let _ = self.0.signal_pcscd("-CONT");
    }
}
