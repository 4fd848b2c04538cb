//! A private mount namespace for one test, and a small disk in it.
//!
//! A test calls [`private_mounts`] first. In the ordinary test process it checks the
//! prerequisites (root, `unshare`, `mount`), runs the same test binary for just this test
//! under `unshare --mount --propagation private`, reports that child's result and returns
//! `false` (or skips through `tapsign_skip`). In the child it returns `true`, and the test
//! body runs there, free to mount a [`SmallDisk`] (a tmpfs with a size) without touching the
//! host: the mount ends with the namespace.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const MARKER_ENV: &str = "TAPSIGN_MOUNT_NS";

/// Whether the caller is inside its private mount namespace and should run its body.
pub fn private_mounts() -> bool {
    isolated(MARKER_ENV, &["--mount"], &["unshare", "mount"])
}

/// Run the calling test again in new namespaces (`unshare UNSHARE`, through
/// [`tapsign_skip::rerun_in_namespaces`]), marked with `marker`. `true` in that child; `false`
/// in the parent once the child passed, or after a skip when a prerequisite (root, one of
/// `tools`) is missing.
pub(crate) fn isolated(marker: &str, unshare: &[&str], tools: &[&str]) -> bool {
    let current = std::thread::current();
    let name = current
        .name()
        .filter(|n| *n != "main")
        .expect("call from a libtest test thread")
        .to_owned();
    match std::env::var(marker) {
        Ok(m) if m == name => return true,
        Ok(m) => panic!("inside the namespace for {m:?}, but {name:?} ran"),
        Err(_) => {}
    }
    if !tapsign_skip::needs_root("a private namespace") {
        return false;
    }
    if let Some(tool) = tools.iter().find(|t| tapsign_skip::which(t).is_none()) {
        tapsign_skip::skip(&format!("`{tool}` not found (see scripts/packages.txt)"));
        return false;
    }
    tapsign_skip::rerun_in_namespaces(&name, unshare, &[(marker, name.as_ref())]);
    false
}

/// A tmpfs of a fixed size and inode count mounted on a folder, and a ballast file to fill
/// it to a chosen point: a disk that is full, or nearly.
pub struct SmallDisk {
    dir: PathBuf,
    ballast: PathBuf,
    inodes: PathBuf,
}

/// tmpfs allocates whole pages.
pub const PAGE: u64 = 4096;

impl SmallDisk {
    /// Mount a tmpfs of `kib` KiB and `inodes` inodes, mode 0700, on `dir` (inside
    /// [`private_mounts`]). What `dir` held is hidden until the namespace ends.
    pub fn mount(dir: &Path, kib: u64, inodes: u64) -> SmallDisk {
        let opts = format!("size={kib}k,nr_inodes={inodes},mode=0700");
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &opts,
                "tapsign-test",
                dir.to_str().unwrap(),
            ])
            .status()
            .expect("run mount");
        assert!(status.success(), "mount tmpfs on {}", dir.display());
        SmallDisk {
            dir: dir.to_owned(),
            ballast: dir.join(".ballast"),
            inodes: dir.join(".inodes"),
        }
    }

    /// Fill the disk, then give back `bytes` (rounded down to pages): the next writes that
    /// need more fail with ENOSPC.
    pub fn leave_free(&self, bytes: u64) {
        self.free();
        let mut f = std::fs::File::create(&self.ballast).expect("ballast");
        let chunk = vec![0x5a_u8; 64 * 1024];
        let mut len = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => len += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        // What remains below a page cannot be written either.
        let keep = len.saturating_sub(bytes / PAGE * PAGE);
        f.set_len(keep).expect("trim the ballast");
        f.sync_all().expect("sync the ballast");
    }

    /// Use up every inode but `n` (files and folders take one each).
    pub fn leave_inodes(&self, n: usize) {
        self.free();
        std::fs::create_dir(&self.inodes).expect("inode ballast folder");
        let mut made = Vec::new();
        loop {
            let p = self.inodes.join(made.len().to_string());
            match std::fs::File::create(&p) {
                Ok(_) => made.push(p),
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("using up inodes: {e}"),
            }
        }
        for p in made.iter().rev().take(n) {
            std::fs::remove_file(p).expect("free an inode");
        }
    }

    /// Empty the ballast: the disk has room again.
    pub fn free(&self) {
        let _ = std::fs::remove_file(&self.ballast);
        let _ = std::fs::remove_dir_all(&self.inodes);
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Unmounted when dropped (lazily: the agent may still hold files on it). The folder it was
/// mounted on is then the host's again, and the temporary home that holds it can be removed;
/// left mounted until the namespace ended, the home's removal failed on the mount point and
/// every run left an empty folder in the host's temporary directory.
impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
