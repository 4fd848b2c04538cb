//! Which agent `tapsign lock` and `status` reach, and how long they wait for it: the agent
//! serving this home is found wherever it listens and whatever the file system, and what
//! answers at the socket holds neither command past its bound (red-team round 26, recheck).
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tapsign_tests::ns::private_mounts;
use tapsign_tests::{World, skip};

/// A world with a key, its agent running and unlocked.
fn unlocked(w: &mut World) {
    w.setup_key("b", "binance", "ak", "sk");
    w.start_agent();
    w.run(&["unlock"], "").ok();
}

/// `tapsign ARGS` in `w`, with TAPSIGN_SOCK at `socket` instead of its agent's.
fn run_at(w: &World, socket: &Path, args: &[&str]) -> tapsign_tests::Run {
    let mut cmd = w.cmd(args);
    cmd.env("TAPSIGN_SOCK", socket);
    w.run_cmd(cmd, "")
}

fn locked_by_sighup(w: &World) {
    w.wait_for_status("the session locked", Duration::from_secs(10), |s| {
        s["state"] == "locked" && s["lock_reason"].as_str().unwrap_or("").contains("SIGHUP")
    });
}

/// Red-team round 26, recheck: a lock hook whose TAPSIGN_HOME named one home of the user's
/// reached, on its socket, the agent of another (a second account's, on the default socket).
/// That agent locked and answered; the hook said "Locked" and the home's own agent kept its
/// session. The agent serving this home is locked too, and named.
#[test]
fn a_lock_answered_by_another_home_s_agent_locks_this_home_s_agent_too() {
    let mut mine = World::new();
    unlocked(&mut mine);
    let mut other = World::new();
    unlocked(&mut other);
    let out = run_at(&mine, &other.sock, &["lock"]);
    let said = out.ok();
    let (pid, other_pid) = (mine.agent_pid(), other.agent_pid());
    assert!(
        said.contains(&format!("the agent serving this home (pid {pid})")),
        "{out:?}"
    );
    assert!(
        said.contains(&format!(
            "(pid {other_pid}) locked its session; it serves another home"
        )),
        "{out:?}"
    );
    locked_by_sighup(&mine);
    other.wait_for_status("the other home locked", Duration::from_secs(10), |s| {
        s["state"] == "locked"
    });
    // Its own home's agent answering: no more is said or sent.
    other.run(&["unlock"], "").ok();
    let said = other.run(&["lock"], "");
    assert_eq!(
        said.ok().trim(),
        "Locked: the session is over and its secrets are wiped."
    );
}

/// The same when the other home's agent does not answer (stopped, or every slot taken): `lock`
/// signalled it, said "Locked", and the home's own agent kept its session.
#[test]
fn a_lock_that_signals_another_home_s_agent_locks_this_home_s_agent_too() {
    let mut mine = World::new();
    unlocked(&mut mine);
    let mut other = World::new();
    unlocked(&mut other);
    let signal = |sig: &str| {
        let pid = other.agent_pid().to_string();
        assert!(
            Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    signal("-STOP");
    let out = run_at(&mine, &other.sock, &["lock"]);
    signal("-CONT");
    let said = out.ok();
    assert!(
        said.contains(&format!(
            "the agent serving this home (pid {})",
            mine.agent_pid()
        )),
        "{out:?}"
    );
    locked_by_sighup(&mine);
}

/// A listener at `path`, of this test's user, that answers every connection one byte every
/// 300 ms: the header of a 4 KiB frame, then spaces. Each read gets a byte well within any
/// timeout; the answer never ends. It stops after 40 s.
fn dripping(path: &std::path::Path) {
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_millis(10)));
                let _ = conn.read(&mut [0; 256]);
                let started = Instant::now();
                let bytes = [0u8, 0, 0x10, 0].into_iter().chain(std::iter::repeat(b' '));
                for b in bytes {
                    if started.elapsed() > Duration::from_secs(40) || conn.write_all(&[b]).is_err()
                    {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
            });
        }
    });
}

/// Red-team round 26: a listener of the user's that answered `hello` a byte at a time kept
/// `tapsign status` for 57 s: its 5 s bounded each read, not the answer. It is the whole
/// answer's deadline now.
#[test]
fn status_gives_up_on_an_answer_that_comes_a_byte_at_a_time() {
    let w = World::new();
    std::fs::create_dir_all(w.sock.parent().unwrap()).unwrap();
    dripping(&w.sock);
    let started = Instant::now();
    let out = w.run(&["status"], "");
    let took = started.elapsed();
    out.fails_with(1, "did not answer within 5 s");
    // 5 s and the start of a process; the drip would go on for 40 s.
    assert!(took < Duration::from_secs(15), "status took {took:?}");
}

/// A listener at `path`, of this test's user, that answers as an agent would: `hello`, then
/// `locked` to anything. It is no agent: a same-user program standing in for one.
fn answering_locked(path: &Path) {
    use tapsign_proto::frame::{read_frame, write_frame};
    use tapsign_proto::{PROTOCOL_VERSION, Request, Response};
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                while let Ok(body) = read_frame(&mut conn) {
                    let hello = serde_json::from_slice::<Request>(&body)
                        .is_ok_and(|r| matches!(r, Request::Hello { .. }));
                    let answer = match hello {
                        true => Response::Hello {
                            version: PROTOCOL_VERSION,
                            agent: "tapsign 0.0".into(),
                        },
                        false => Response::Locked {},
                    };
                    if write_frame(&mut conn, &answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
}

/// The same, when what answers `locked` is no agent at all: the agent serving this home,
/// which did not answer, is locked all the same.
#[test]
fn a_lock_answered_by_something_that_is_no_agent_locks_this_home_s_agent_too() {
    let mut w = World::new();
    unlocked(&mut w);
    let planted = w.sock.with_file_name("planted.sock");
    answering_locked(&planted);
    let out = run_at(&w, &planted, &["lock"]);
    let said = out.ok();
    assert!(
        said.contains("said it locked, and is no agent serving this home"),
        "{out:?}"
    );
    assert!(
        said.contains(&format!(
            "the agent serving this home (pid {})",
            w.agent_pid()
        )),
        "{out:?}"
    );
    locked_by_sighup(&w);
}

/// A loop-mounted btrfs on a folder, unmounted when dropped (lazily: whatever still holds a
/// file there lets go with the namespace).
struct Btrfs {
    at: PathBuf,
    _image: tempfile::TempDir,
}

impl Btrfs {
    /// A fresh btrfs of 128 MiB mounted on `at`, 0700; `None` after a skip when it cannot be
    /// made here (no btrfs-progs, no loop devices, no btrfs in the kernel).
    fn mount(at: &Path) -> Option<Btrfs> {
        let mkfs = skip::needs_program("mkfs.btrfs", "btrfs-progs")?;
        let image = tempfile::tempdir().unwrap();
        let file = image.path().join("btrfs.img");
        std::fs::File::create(&file)
            .unwrap()
            .set_len(128 << 20)
            .unwrap();
        let made = |cmd: &mut Command, what: &str| match cmd.output() {
            Ok(o) if o.status.success() => true,
            Ok(o) => {
                skip::skip(&format!(
                    "{what}: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
                false
            }
            Err(e) => {
                skip::skip(&format!("{what}: {e}"));
                false
            }
        };
        if !made(Command::new(mkfs).arg("-q").arg(&file), "mkfs.btrfs")
            || !made(
                Command::new("mount")
                    .args(["-t", "btrfs", "-o", "loop"])
                    .arg(&file)
                    .arg(at),
                "cannot loop-mount a btrfs",
            )
        {
            return None;
        }
        std::fs::set_permissions(at, std::fs::Permissions::from_mode(0o700)).unwrap();
        Some(Btrfs {
            at: at.to_owned(),
            _image: image,
        })
    }
}

impl Drop for Btrfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

/// The device `/proc/self/mountinfo` gives for the mount on `at`.
fn mount_device(at: &Path) -> (u64, u64) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some(at.to_str().unwrap()))
        .expect("the mount in mountinfo");
    let (ma, mi) = line.split(' ').nth(2).unwrap().split_once(':').unwrap();
    (ma.parse().unwrap(), mi.parse().unwrap())
}

/// Red-team round 26, recheck: on btrfs (Fedora's and openSUSE's default) `stat` gives a
/// folder a subvolume's device, not the one `/proc/locks` prints, and the agent serving a home
/// there was never found: a lock hook with another TAPSIGN_SOCK than the agent's locked
/// nothing, and a second agent was refused by "another process". Here the home is on a
/// loop-mounted btrfs.
#[test]
fn a_lock_hook_finds_the_agent_serving_a_home_on_btrfs() {
    if !private_mounts() {
        return;
    }
    let mut w = World::new();
    let Some(disk) = Btrfs::mount(w.home()) else {
        return;
    };
    // The case itself: stat's device is not the mount's.
    let dev = std::fs::metadata(&disk.at).unwrap().dev();
    let stat_dev = (u64::from(libc::major(dev)), u64::from(libc::minor(dev)));
    assert_ne!(stat_dev, mount_device(&disk.at), "not the btrfs case");
    unlocked(&mut w);
    let pid = w.agent_pid();
    let elsewhere = w.sock.with_file_name("elsewhere.sock");
    let out = run_at(&w, &elsewhere, &["status"]);
    out.fails_with(3, &format!("a tapsign agent (pid {pid}) runs on this home"));
    let out = run_at(&w, &elsewhere, &["lock"]);
    assert!(
        out.ok()
            .contains(&format!("the agent serving this home (pid {pid})")),
        "{out:?}"
    );
    locked_by_sighup(&w);
    // A second agent is refused naming the first.
    let mut second = w.cmd_under(&["timeout", "10"], &["agent"]);
    second.env("TAPSIGN_SOCK", &elsewhere);
    w.run_cmd(second, "")
        .fails_with(1, &format!("already running on this home: pid {pid}"));
    // Stopped before the disk goes.
    w.signal_agent("TERM");
}

/// Red-team round 26, recheck: an `XDG_RUNTIME_DIR` of another user's (a login snippet's
/// `/tmp/$UID-runtime-dir`, made first by that user) was served silently, and its owner locked
/// the session at will by moving the socket folder and back. The agent refuses it, and one
/// that others can write without the sticky bit, saying what to do.
#[test]
fn a_runtime_folder_another_user_owns_or_others_can_write_is_refused() {
    let w = World::new();
    let runtime = w.home().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    let agent = |w: &World| {
        let mut cmd = w.cmd_under(&["timeout", "10"], &["agent"]);
        cmd.env_remove("TAPSIGN_SOCK")
            .env("XDG_RUNTIME_DIR", &runtime);
        w.run_cmd(cmd, "")
    };
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = agent(&w);
    out.fails_with(1, "can be written by other users (mode 0777)");
    out.fails_with(1, "set XDG_RUNTIME_DIR to a folder of your own");
    assert!(!runtime.join("tapsign").exists(), "{out:?}");
    // With the socket elsewhere the agent serves, and warns: the session bus is there. So it
    // does of a sticky one (/tmp), which would hold its socket folder: anyone can make the
    // bus's name there first.
    let mut w = w;
    for mode in [0o777, 0o1777] {
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(mode)).unwrap();
        w.start_agent_with(|cmd| {
            cmd.env("XDG_RUNTIME_DIR", &runtime)
                .env_remove("DBUS_SESSION_BUS_ADDRESS");
        });
        let said = w.agent_said("could be another user's program");
        assert!(
            said.contains("could be another user's program"),
            "{mode:o}: {said}"
        );
        w.signal_agent("TERM");
    }
    if !skip::needs_root("a folder of another user's") {
        return;
    }
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::lchown(&runtime, Some(65534), Some(65534)).unwrap();
    agent(&w).fails_with(1, "belongs to uid 65534, not to you");
}
