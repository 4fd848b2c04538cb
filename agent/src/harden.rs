//! Process hardening, done before the first secret exists: by the agent at start, and by the
//! CLI commands that read a secret or hold the vault key, before their prompt.
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

/// Locked, dump-excluded memory for secrets: the only `unsafe` code that touches a secret (the
/// rest: systemd.rs takes the sockets systemd passes, watchdog.rs counts signals).
///
/// Each buffer gets pages of its own (page-aligned, rounded up to whole pages). Sharing a page
/// would be wrong: `munlock` does not nest, so dropping one secret would unlock the page under
/// another still in use. The pages are `mlock`ed (never swapped) and `MADV_DONTDUMP` (never in
/// a core dump, should one happen despite the above), zeroed before they are freed.
#[allow(unsafe_code)]
mod locked {
    use std::alloc::{Layout, alloc_zeroed, dealloc, handle_alloc_error};
    use std::ptr::NonNull;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use zeroize::Zeroize;

    static LOCKED_BYTES: AtomicUsize = AtomicUsize::new(0);
    static MLOCK_FAILED: AtomicBool = AtomicBool::new(false);

    #[cfg(test)]
    thread_local! {
        /// Tests: refuse this thread's `mlock`s, as a limit of 0 without CAP_IPC_LOCK does.
        pub static FAIL_MLOCK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// Bytes of secret memory currently locked.
    pub fn locked_bytes() -> usize {
        LOCKED_BYTES.load(Ordering::Relaxed)
    }

    /// Whether an `mlock` was ever refused (RLIMIT_MEMLOCK too small): secrets then still
    /// zeroize, but may be swapped out.
    pub fn mlock_failed() -> bool {
        MLOCK_FAILED.load(Ordering::Relaxed)
    }

    /// A fixed-size secret buffer in pages of its own.
    pub struct LockedBuf {
        ptr: NonNull<u8>,
        len: usize,
        layout: Layout,
        locked: bool,
    }

    // SAFETY: LockedBuf owns its allocation exclusively, like a Box<[u8]>; it has no interior
    // mutability, so sharing `&LockedBuf` across threads only allows reads.
    unsafe impl Send for LockedBuf {}
    unsafe impl Sync for LockedBuf {}

    impl LockedBuf {
        /// Copy `data` into fresh locked pages.
        pub fn from_slice(data: &[u8]) -> LockedBuf {
            let buf = LockedBuf::zeroed(data.len());
            // SAFETY: data.len() <= the allocation's size, the regions do not overlap.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf.ptr.as_ptr(), data.len()) };
            buf
        }

        /// `len` zero bytes in fresh locked pages: a buffer to read a secret into in place
        /// (the prompt's), never grown, so no reallocation leaves a copy behind.
        pub fn zeroed(len: usize) -> LockedBuf {
            let page = rustix::param::page_size();
            let size = len.div_ceil(page).max(1) * page;
            let Ok(layout) = Layout::from_size_align(size, page) else {
                // Only reachable for a size near usize::MAX, which no secret is.
                handle_alloc_error(Layout::new::<u8>());
            };
            // SAFETY: layout has a non-zero size.
            let raw = unsafe { alloc_zeroed(layout) };
            let Some(ptr) = NonNull::new(raw) else {
                handle_alloc_error(layout)
            };
            // SAFETY: ptr..ptr+size is our own, page-aligned allocation.
            let locked = unsafe { rustix::mm::mlock(ptr.as_ptr().cast(), size) }.is_ok();
            #[cfg(test)]
            let locked = locked && !FAIL_MLOCK.with(std::cell::Cell::get);
            if locked {
                LOCKED_BYTES.fetch_add(size, Ordering::Relaxed);
            } else if !MLOCK_FAILED.swap(true, Ordering::Relaxed) {
                say!(
                    "tapsign: warning: cannot lock secret memory (RLIMIT_MEMLOCK too small?); \
                     secrets may be swapped to disk. Raise the limit (ulimit -l, or LimitMEMLOCK= in the unit)."
                );
            }
            // SAFETY: as above. Failure only means the pages could appear in a core dump,
            // which hardening already disables.
            let _ = unsafe {
                rustix::mm::madvise(ptr.as_ptr().cast(), size, rustix::mm::Advice::LinuxDontDump)
            };
            LockedBuf {
                ptr,
                len,
                layout,
                locked,
            }
        }

        /// Whether its pages are locked: one that is not may be swapped out, and a copy in
        /// swap outlives the zeroing.
        pub fn is_locked(&self) -> bool {
            self.locked
        }

        pub fn as_slice(&self) -> &[u8] {
            // SAFETY: ptr is valid for len initialised bytes for as long as self lives.
            unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
        }

        pub fn as_mut_slice(&mut self) -> &mut [u8] {
            // SAFETY: as above; `&mut self` makes this the only view.
            unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
        }
    }

    impl Drop for LockedBuf {
        fn drop(&mut self) {
            let size = self.layout.size();
            // SAFETY: we own ptr..ptr+size; zeroize uses volatile writes the compiler keeps.
            unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), size) }.zeroize();
            if self.locked {
                // SAFETY: the same range we locked.
                let _ = unsafe { rustix::mm::munlock(self.ptr.as_ptr().cast(), size) };
                LOCKED_BYTES.fetch_sub(size, Ordering::Relaxed);
            }
            // SAFETY: allocated with this layout in from_slice.
            unsafe { dealloc(self.ptr.as_ptr(), self.layout) };
        }
    }
}

/// The agent's RLIMIT_MEMLOCK (soft; `None`: unlimited) when it was first asked, which the
/// agent does at start ([`note_memlock_at_start`]): a limit below it now was lowered under the
/// running agent (`prlimit`), one equal to it was always that small.
static MEMLOCK_AT_START: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();

/// Note the locked-memory limit the agent starts with (later calls change nothing).
pub fn note_memlock_at_start() {
    MEMLOCK_AT_START.get_or_init(memlock_limit);
}

/// The limit noted at start ([`note_memlock_at_start`]), or the one now if none was.
pub fn memlock_at_start() -> Option<u64> {
    *MEMLOCK_AT_START.get_or_init(memlock_limit)
}

/// The process's RLIMIT_MEMLOCK now (soft; `None`: unlimited).
pub fn memlock_limit() -> Option<u64> {
    rustix::process::getrlimit(Resource::Memlock).current
}

/// Locked memory an unlock cannot have: what it needs at least, and what the limit leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortfall {
    /// Bytes the buffers need at least (a page each).
    pub need: u64,
    /// Bytes the limit leaves beside what is locked already (an open session's secrets).
    pub room: u64,
    /// The limit.
    pub limit: u64,
    /// Bytes locked already (an open session's secrets, which a new session replaces only
    /// once it is opened).
    pub held: u64,
    /// The limit when the agent started (`None`: unlimited): one lower now was lowered under
    /// the running agent (prlimit), which a restart undoes.
    pub at_start: Option<u64>,
}

impl Shortfall {
    /// Whether the limit is lower than the one the agent started with.
    pub fn lowered(&self) -> bool {
        self.at_start.is_none_or(|start| self.limit < start)
    }

    /// Whether the buffers would fit but for what an open session holds.
    pub fn fits_without_session(&self) -> bool {
        self.held > 0 && self.need <= self.limit
    }
}

/// Whether `buffers` more secret buffers ([`LockedBuf`], a page each at least) would go past
/// the locked-memory limit: known before an unlock asks for a touch, which must not be spent
/// on secrets that then cannot be locked (red-team round 21: 1,100 credentials stored by
/// anyone made every all-keys unlock fail after the touch). `None` when they fit, when the
/// limit is unlimited, or when the process may lock past it (CAP_IPC_LOCK, as root has).
pub fn lockable_shortfall(buffers: usize) -> Option<Shortfall> {
    shortfall(
        buffers,
        rustix::param::page_size(),
        memlock_limit(),
        locked_bytes(),
        may_lock_past_the_limit(),
    )
}

fn shortfall(
    buffers: usize,
    page: usize,
    limit: Option<u64>,
    locked: usize,
    exempt: bool,
) -> Option<Shortfall> {
    let limit = limit.filter(|_| !exempt)?;
    let need = (buffers as u64).saturating_mul(page as u64);
    let room = limit.saturating_sub(locked as u64);
    (need > room).then_some(Shortfall {
        need,
        room,
        limit,
        held: locked as u64,
        at_start: memlock_at_start(),
    })
}

/// Whether the process holds CAP_IPC_LOCK (bit 14 of `CapEff` in /proc/self/status), which
/// lets `mlock` go past RLIMIT_MEMLOCK. Unreadable: assumed not, which at worst refuses an
/// unlock that names the keys it could open instead.
fn may_lock_past_the_limit() -> bool {
    const CAP_IPC_LOCK: u32 = 14;
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK) != 0)
}

#[cfg(test)]
pub use locked::FAIL_MLOCK;
pub use locked::{LockedBuf, locked_bytes, mlock_failed};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locked_buffers_hold_their_bytes_and_count_pages() {
        let before = locked_bytes();
        let a = LockedBuf::from_slice(b"secret-a");
        let b = LockedBuf::from_slice(&[7u8; 5000]);
        assert_eq!(a.as_slice(), b"secret-a");
        assert_eq!(b.as_slice(), &[7u8; 5000][..]);
        let page = rustix::param::page_size();
        if !mlock_failed() {
            assert_eq!(locked_bytes() - before, page + 2 * page);
        }
        drop(a);
        drop(b);
        assert_eq!(locked_bytes(), before);
        assert!(LockedBuf::from_slice(b"").as_slice().is_empty());
    }

    #[test]
    fn more_buffers_than_the_limit_leaves_room_for_fall_short() {
        // 8 MiB (the usual `ulimit -l`), 4 KiB pages, nothing locked: 2,048 buffers fit.
        let limit = Some(8 << 20);
        assert_eq!(shortfall(2048, 4096, limit, 0, false), None);
        let short = shortfall(2204, 4096, limit, 0, false).unwrap();
        assert_eq!(
            (short.need, short.room, short.limit),
            (2204 * 4096, 8 << 20, 8 << 20)
        );
        // What an open session holds counts against the limit.
        assert!(shortfall(2048, 4096, limit, 4096, false).is_some());
        // Unlimited, or CAP_IPC_LOCK: never short.
        assert_eq!(shortfall(1 << 30, 4096, None, 0, false), None);
        assert_eq!(shortfall(1 << 30, 4096, limit, 0, true), None);
    }
}
