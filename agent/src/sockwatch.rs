//! The watch on the socket's path ([`crate::watchdog`]'s "the socket was swapped"): inotify on
//! the socket's folder, for the socket's and the pid file's names, and on every folder above
//! it, for the name of the next folder down.
//!
//! A folder above that is shared and sticky (`/tmp`, for the `$TMPDIR/tapsign-UID` fallback or
//! a `TAPSIGN_SOCK` under it) has an inotify instance of its own. Anyone can make events
//! there, and an instance's queue holds only `fs.inotify.max_queued_events`: a flood of
//! renames in `/tmp` by another user overflowed the one instance, and the lost events locked
//! the session as "the agent's socket was moved or replaced" (red-team round 26). There,
//! lost events are looked into: the socket and the folders on its path are checked to be the
//! ones the agent started with, and the session is locked only if one is not (or cannot be
//! checked). The sticky bit keeps other users from moving our folder there, so only a
//! program of ours could have swapped it, and one of ours can stand in for the agent anyway
//! (docs/threat-model.md). Such a folder is still watched: a program of ours can exchange our
//! folder in it, and the event locks at once.
//!
//! Every other folder on the path (the socket's own, and those only we, or root, can write)
//! is in the first instance, where only programs of ours make events: losing them there locks,
//! and says so, since a swap put back before any check could be among them.

use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Weak;
use std::sync::atomic::Ordering;

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};

use crate::agent::Agent;
use crate::session::LockReason;
use crate::watchdog::{pid_file_reason, swapped_reason};

/// What the watch is for: the socket's path and names, and what they were when it began.
struct Watched {
    socket: PathBuf,
    /// The socket's name in its folder, watched when `id` is known.
    name: Vec<u8>,
    /// The socket's (device, inode) as bound.
    id: Option<(u64, u64)>,
    /// The pid file's name in the socket's folder, if the agent keeps one.
    pid_name: Option<Vec<u8>>,
    /// Each folder on the socket's path, from its own up, with its (device, inode) when the
    /// watch began: what lost events are checked against.
    folders: Vec<(PathBuf, (u64, u64))>,
}

/// One inotify instance and its watches.
struct Instance {
    fd: OwnedFd,
    /// The socket's own folder's watch, in the instance that has it.
    own: Option<i32>,
    /// The folders above, each for the name of the next folder down.
    above: Vec<(i32, Vec<u8>)>,
    /// Lost events are checked, not locked on: the instance of shared sticky folders.
    checked: bool,
}

/// What an event asks for.
enum Hit {
    /// The socket's name, its folder, or a folder on its path changed.
    Swapped,
    /// The pid file's name changed.
    PidFile,
    /// Events were lost (the queue overflowed).
    Lost,
}

/// Lock `agent` on any inotify event for the socket's name in its folder (when `id` is known),
/// for the pid file's name, for the folder itself (moved, deleted), or for the name of the
/// next folder down in a folder above; and on lost events, as the module says. Each instance
/// is read by a thread of its own, blocked on inotify.
pub(crate) fn watch(
    weak: Weak<Agent>,
    socket: PathBuf,
    id: Option<(u64, u64)>,
    pid_name: Option<Vec<u8>>,
) -> std::io::Result<()> {
    let (Some(dir), Some(name)) = (socket.parent(), socket.file_name()) else {
        return Err(std::io::Error::other("the socket path has no folder"));
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let name = name.as_encoded_bytes().to_vec();
    let mut first = Instance::new(false)?;
    // A write into the pid file counts too: the lock on it is advisory.
    let what = WatchFlags::CREATE
        | WatchFlags::DELETE
        | WatchFlags::MOVED_FROM
        | WatchFlags::MOVED_TO
        | WatchFlags::MODIFY
        | WatchFlags::CLOSE_WRITE
        | WatchFlags::DELETE_SELF
        | WatchFlags::MOVE_SELF;
    first.own = Some(inotify::add_watch(&first.fd, dir, what)?);
    let dir_abs = std::fs::canonicalize(dir)?;
    let mut folders = vec![(dir_abs.clone(), id_of(&dir_abs)?)];
    // Every folder above it too, for the name of the next one down: exchanging a folder higher
    // up (`renameat2(RENAME_EXCHANGE)`) makes no event in the socket's own folder, and a bot
    // can rename any folder whose parent it can write. A parent it cannot write needs no
    // watch; one it can write but not watch fails closed.
    let mut shared: Option<Instance> = None;
    let mut here = dir_abs.as_path();
    while let (Some(parent), Some(child)) = (here.parent(), here.file_name()) {
        let moves = WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MOVED_FROM
            | WatchFlags::MOVED_TO
            | WatchFlags::ONLYDIR;
        let meta = std::fs::symlink_metadata(parent)?;
        folders.push((parent.to_path_buf(), (meta.dev(), meta.ino())));
        let instance = match shared_sticky(&meta) {
            true => match &mut shared {
                Some(s) => s,
                None => shared.insert(Instance::new(true)?),
            },
            false => &mut first,
        };
        match inotify::add_watch(&instance.fd, parent, moves) {
            Ok(wd) => instance.above.push((wd, child.as_encoded_bytes().to_vec())),
            Err(e) => {
                let writable = rustix::fs::access(parent, rustix::fs::Access::WRITE_OK).is_ok();
                if writable {
                    return Err(std::io::Error::other(format!(
                        "cannot watch {} ({e}), which a program of yours could change",
                        parent.display()
                    )));
                }
            }
        }
        here = parent;
    }
    let watched = std::sync::Arc::new(Watched {
        socket,
        name,
        id,
        pid_name,
        folders,
    });
    for instance in std::iter::once(first).chain(shared) {
        let (weak, watched) = (weak.clone(), std::sync::Arc::clone(&watched));
        std::thread::Builder::new()
            .name("tapsign-sockwatch".into())
            .spawn(move || read(&weak, &watched, instance))?;
    }
    Ok(())
}

/// A folder anyone may write to that has the sticky bit, owned by root or us (`/tmp`): others
/// make events there at will, but cannot rename or remove what is ours in it.
fn shared_sticky(meta: &std::fs::Metadata) -> bool {
    let me = rustix::process::getuid().as_raw();
    let mode = meta.mode();
    mode & 0o1000 != 0 && mode & 0o002 != 0 && (meta.uid() == 0 || meta.uid() == me)
}

fn id_of(path: &Path) -> std::io::Result<(u64, u64)> {
    std::fs::symlink_metadata(path).map(|m| (m.dev(), m.ino()))
}

impl Instance {
    fn new(checked: bool) -> std::io::Result<Instance> {
        Ok(Instance {
            fd: inotify::init(CreateFlags::CLOEXEC)?,
            own: None,
            above: Vec::new(),
            checked,
        })
    }

    /// What `ev` asks for, if anything: events for other names are skipped.
    fn hit(&self, ev: &inotify::Event<'_>, watched: &Watched) -> Option<Hit> {
        let named = |n: &[u8]| ev.file_name().is_some_and(|f| f.to_bytes() == n);
        let written = ev
            .events()
            .intersects(ReadFlags::MODIFY | ReadFlags::CLOSE_WRITE);
        if ev.events().contains(ReadFlags::QUEUE_OVERFLOW) {
            Some(Hit::Lost)
        } else if ev.events().contains(ReadFlags::IGNORED) {
            // A watch removed by the kernel: its folder was deleted or unmounted.
            Some(Hit::Swapped)
        } else if Some(ev.wd()) != self.own {
            // A watch above: the folder on the socket's path it names changed.
            self.above
                .iter()
                .any(|(wd, child)| *wd == ev.wd() && named(child))
                .then_some(Hit::Swapped)
        } else if ev
            .events()
            .intersects(ReadFlags::DELETE_SELF | ReadFlags::MOVE_SELF)
        {
            Some(Hit::Swapped)
        } else if watched.pid_name.as_deref().is_some_and(named) {
            Some(Hit::PidFile)
        } else if watched.id.is_some() && named(&watched.name) && !written {
            Some(Hit::Swapped)
        } else {
            None
        }
    }
}

/// Read `instance` until the agent is gone, locking as its events ask.
fn read(weak: &Weak<Agent>, watched: &Watched, instance: Instance) {
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
    let mut reader = inotify::Reader::new(&instance.fd, &mut buf);
    // Lost events looked into are said once: a flood goes on for as long as its maker likes.
    let mut said_lost = false;
    loop {
        #[cfg(test)]
        held(weak);
        let hit = match reader.next() {
            Ok(ev) => instance.hit(&ev, watched),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                say!(
                    "tapsign agent: warning: watching {} stopped ({e}): the session is locked, and unlock is refused until the agent restarts",
                    watched.socket.display(),
                );
                if let Some(agent) = weak.upgrade() {
                    agent.guard.set(
                        "watch",
                        format!(
                            "the agent's watch on its socket folder stopped ({e}): restart the agent"
                        ),
                    );
                    agent.lock(lost_reason(&watched.socket));
                }
                return;
            }
        };
        let Some(hit) = hit else {
            continue;
        };
        let Some(agent) = weak.upgrade() else { return };
        match hit {
            Hit::PidFile => {
                agent.guard.pid_event.store(true, Ordering::SeqCst);
                agent.lock(pid_file_reason(&tapsign_proto::path::pid_file(
                    &watched.socket,
                )));
            }
            Hit::Swapped => {
                agent.lock(swapped_reason(&watched.socket));
            }
            Hit::Lost if instance.checked => {
                // The next beat reads the pid file too, as after an event on its name.
                agent.guard.pid_event.store(true, Ordering::SeqCst);
                match changed(watched) {
                    Some(why) => {
                        agent.lock(why);
                    }
                    None if !said_lost => {
                        said_lost = true;
                        say!(
                            "tapsign agent: the watch on the shared folders above {} lost events (a queue overflow: a program floods them); the socket and the folders on its path are unchanged, so the session stays open (said once)",
                            watched.socket.display()
                        );
                    }
                    None => {}
                }
                // Counted once looked into (and locked on, if it must): a test that sees the
                // count sees what the look did.
                #[cfg(test)]
                agent.guard.lost.fetch_add(1, Ordering::SeqCst);
            }
            Hit::Lost => {
                agent.lock(lost_reason(&watched.socket));
            }
        }
    }
}

/// After lost events: why to lock, if the socket or a folder on its path is not the one the
/// watch began with, or cannot be checked.
fn changed(watched: &Watched) -> Option<LockReason> {
    let socket = watched.id.map(|id| (watched.socket.clone(), id));
    for (path, was) in watched.folders.iter().cloned().chain(socket) {
        match id_of(&path) {
            Ok(now) if now == was => {}
            Ok(_) => return Some(swapped_reason(&watched.socket)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Some(swapped_reason(&watched.socket));
            }
            Err(_) => return Some(lost_reason(&watched.socket)),
        }
    }
    None
}

/// Why lost events lock: a swap put back before any check could be among them.
fn lost_reason(socket: &Path) -> LockReason {
    LockReason::Other(format!(
        "the agent's watch on its socket {} lost events (an inotify queue overflow, or a watch that stopped): a swap of the socket could have gone unseen",
        socket.display()
    ))
}

/// Tests hold the readers here, so that events pile up unread.
#[cfg(test)]
fn held(weak: &Weak<Agent>) {
    while weak
        .upgrade()
        .is_some_and(|a| a.guard.hold_watch.load(Ordering::SeqCst))
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::watchdog::tests::unlocked;

    /// A folder at `path` with `mode` (a sticky one anyone may write to, as `/tmp` is: 0o1777).
    fn folder(path: &Path, mode: u32) -> PathBuf {
        std::fs::create_dir(path).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        path.to_path_buf()
    }

    /// An unlocked agent under `dir` watching a socket bound at `socket`, its readers held
    /// (events pile up unread until the test lets them go); the socket's listener.
    fn watching(dir: &Path, socket: &Path) -> (Arc<Agent>, std::os::unix::net::UnixListener) {
        let listener = std::os::unix::net::UnixListener::bind(socket).unwrap();
        let id = id_of(socket).unwrap();
        let agent = unlocked(dir);
        agent.guard.hold_watch.store(true, Ordering::SeqCst);
        watch(Arc::downgrade(&agent), socket.to_path_buf(), Some(id), None).unwrap();
        (agent, listener)
    }

    /// More events in `dir` than an inotify instance queues (renames of a name of its own,
    /// two events each), or `None` where the limit is too high to reach quickly.
    fn flood(dir: &Path) -> Option<()> {
        let max: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
            .ok()?
            .trim()
            .parse()
            .ok()?;
        if max > 1 << 20 {
            eprintln!("SKIPPED: fs.inotify.max_queued_events is {max}: too many events to make");
            return None;
        }
        let (a, b) = (dir.join("noise-a"), dir.join("noise-b"));
        std::fs::write(&a, "").unwrap();
        for _ in 0..max / 4 + 64 {
            std::fs::rename(&a, &b).unwrap();
            std::fs::rename(&b, &a).unwrap();
        }
        Some(())
    }

    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let given_up = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < given_up, "{what}: not within 30 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn reason(agent: &Agent) -> String {
        agent
            .session()
            .lock_reason()
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    /// The session was locked as a swap of the socket.
    fn locked_as_swapped(agent: &Agent) {
        let why = reason(agent);
        assert!(why.contains("was moved or replaced"), "{why}");
    }

    /// Red-team round 26: a flood of renames in `/tmp`, above the socket, overflowed the
    /// watch's queue, and the lost events locked the session as "the agent's socket ... was
    /// moved or replaced": another user could end the trader's session at will. A shared
    /// sticky folder's lost events are looked into; the socket unchanged, the session stays
    /// open, and a real swap of the socket still locks.
    #[test]
    fn a_flood_in_a_shared_sticky_folder_above_the_socket_does_not_lock() {
        let dir = tempfile::tempdir().unwrap();
        let shared = folder(&dir.path().join("shared"), 0o1777);
        let run = folder(&shared.join("run"), 0o700);
        let socket = run.join("agent.sock");
        let (agent, _listener) = watching(dir.path(), &socket);
        if flood(&shared).is_none() {
            return;
        }
        agent.guard.hold_watch.store(false, Ordering::SeqCst);
        wait_until("the lost events looked into", || {
            agent.guard.lost.load(Ordering::SeqCst) > 0
        });
        assert!(agent.session().is_unlocked(), "{}", reason(&agent));
        // A swap, put back at once: locked, as before.
        std::fs::rename(&socket, run.join("aside.sock")).unwrap();
        std::fs::rename(run.join("aside.sock"), &socket).unwrap();
        wait_until("the swap locked", || !agent.session().is_unlocked());
        locked_as_swapped(&agent);
    }

    /// The lost events a flood hides are not taken on trust: a folder on the socket's path
    /// moved while they were lost (an event the overflow dropped) locks when they are looked
    /// into.
    #[test]
    fn a_folder_moved_under_cover_of_a_flood_locks() {
        let dir = tempfile::tempdir().unwrap();
        let shared = folder(&dir.path().join("shared"), 0o1777);
        let mid = folder(&shared.join("mid"), 0o700);
        let run = folder(&mid.join("run"), 0o700);
        let socket = run.join("agent.sock");
        let (agent, _listener) = watching(dir.path(), &socket);
        if flood(&shared).is_none() {
            return;
        }
        // Its one event is in the shared folder's queue, which is full.
        std::fs::rename(&mid, shared.join("mid-aside")).unwrap();
        agent.guard.hold_watch.store(false, Ordering::SeqCst);
        wait_until("the move locked", || !agent.session().is_unlocked());
        wait_until("the lost events looked into", || {
            agent.guard.lost.load(Ordering::SeqCst) > 0
        });
        locked_as_swapped(&agent);
    }

    /// Lost events in the socket's own folder, where only programs of the user's make them,
    /// lock, as before, but say what happened: "moved or replaced" sent the trader looking for
    /// a program that had moved the socket (red-team round 26).
    #[test]
    fn lost_events_in_the_socket_s_own_folder_lock_and_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let run = folder(&dir.path().join("run"), 0o700);
        let socket = run.join("agent.sock");
        let (agent, _listener) = watching(dir.path(), &socket);
        if flood(&run).is_none() {
            return;
        }
        agent.guard.hold_watch.store(false, Ordering::SeqCst);
        wait_until("the lost events locked", || !agent.session().is_unlocked());
        let why = reason(&agent);
        assert!(
            why.contains("lost events (an inotify queue overflow"),
            "{why}"
        );
        assert!(!why.contains("moved or replaced"), "{why}");
    }
}
