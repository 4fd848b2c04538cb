//! The soft token: a software stand-in for a YubiKey. **NO SECURITY, TESTS ONLY.** Its
//! private key sits in a plain file, so anyone who can read the file can open the keystore.
//! It exists so the keystore, the agent and the end-to-end tests can run without hardware.
//!
//! Use is gated: [`SoftToken::create`] and [`SoftToken::open`] return
//! [`TokenError::SoftRefused`] unless `TAPSIGN_INSECURE_SOFT_TOKEN=1` is set, so neither the
//! agent nor the CLI can use it by accident (the gate sits here, not in each caller, so no
//! caller can forget it). The crate's own unit tests bypass the gate.
//!
//! State, in a folder the caller picks (the agent uses `<keystore dir>/../soft-token/`):
//! - `key`: the P-256 private key, lowercase hex, mode 0600;
//! - `touch`: how the next touch goes, read at each [`Token::agree`], written by a test
//!   while the agent runs: missing, empty or `approve` → approve at once; `deny` → refuse
//!   after ~200 ms ([`TokenError::TouchTimeout`]); `delay <ms>` → approve after `ms`;
//!   `timeout <ms>` → refuse after `ms`;
//! - `touches`: how many touches were approved, decimal (tests read it).

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use p256::elliptic_curve::Generate;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::{PublicKey, SecretKey};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::{Token, TokenError, TokenStub};

/// The environment variable that allows the soft token.
pub const INSECURE_ENV: &str = "TAPSIGN_INSECURE_SOFT_TOKEN";

/// Is the soft token allowed in this process (`TAPSIGN_INSECURE_SOFT_TOKEN=1`)?
pub fn insecure_allowed() -> bool {
    allowed_by(std::env::var(INSECURE_ENV).ok().as_deref())
}

fn allowed_by(value: Option<&str>) -> bool {
    value == Some("1")
}

/// How long `deny` waits before refusing, like a human who never touches.
const DENY_AFTER: Duration = Duration::from_millis(200);

/// A soft token opened from its folder. NO SECURITY, TESTS ONLY.
pub struct SoftToken {
    dir: PathBuf,
    key: SecretKey,
    stub: TokenStub,
}

impl SoftToken {
    /// Make a new soft token in `dir` (created 0700 if missing). Refuses to overwrite an
    /// existing key, and refuses outright without `TAPSIGN_INSECURE_SOFT_TOKEN=1`.
    pub fn create(dir: &Path) -> Result<SoftToken, TokenError> {
        gate()?;
        Self::create_ungated(dir)
    }

    /// Open the soft token in `dir`: [`TokenError::Absent`] if it has no key. Refuses
    /// without `TAPSIGN_INSECURE_SOFT_TOKEN=1`.
    pub fn open(dir: &Path) -> Result<SoftToken, TokenError> {
        gate()?;
        Self::open_ungated(dir)
    }

    pub(crate) fn create_ungated(dir: &Path) -> Result<SoftToken, TokenError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| fail("create the folder", dir, e))?;
        let key = SecretKey::try_generate()
            .map_err(|e| TokenError::Other(format!("random number generator failed: {e}")))?;
        let path = dir.join("key");
        let mut field = key.to_bytes();
        let hex = Zeroizing::new(hex::encode(field));
        field.zeroize();
        // Whole or not at all: a key file cut short by a full disk would be "a soft token
        // that exists" which nothing can open.
        crate::disk::write_atomic(&path, hex.as_bytes(), crate::disk::Place::NewOnly).map_err(
            |e| match e.exists() {
                true => TokenError::Other(format!(
                    "a soft token already exists in {}; open it, or delete {} first",
                    dir.display(),
                    path.display()
                )),
                false => fail(e.step, &e.path, e.source),
            },
        )?;
        Ok(Self::from_key(dir, key))
    }

    pub(crate) fn open_ungated(dir: &Path) -> Result<SoftToken, TokenError> {
        let path = dir.join("key");
        let hex = match fs::read_to_string(&path) {
            Ok(s) => Zeroizing::new(s),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(TokenError::Absent {
                    hint: format!("no soft token in {} (make one first)", dir.display()),
                });
            }
            Err(e) => return Err(fail("read", &path, e)),
        };
        let bytes = Zeroizing::new(hex::decode(hex.trim()).unwrap_or_default());
        let key = SecretKey::from_slice(&bytes).map_err(|_| {
            TokenError::Other(format!(
                "{} does not hold a P-256 private key in hex",
                path.display()
            ))
        })?;
        Ok(Self::from_key(dir, key))
    }

    fn from_key(dir: &Path, key: SecretKey) -> SoftToken {
        let public = key.public_key().to_sec1_point(true).as_bytes().to_vec();
        let stub = TokenStub::Soft {
            id: hex::encode(&Sha256::digest(&public)[..4]),
            public_key: hex::encode(&public),
        };
        SoftToken {
            dir: dir.to_owned(),
            key,
            stub,
        }
    }

    /// Where the agent keeps the soft token for the keystore in `keystore_dir`: beside it,
    /// in `soft-token/`, so one `$TAPSIGN_HOME` holds a whole test setup.
    pub fn dir_beside(keystore_dir: &Path) -> PathBuf {
        keystore_dir
            .parent()
            .unwrap_or(keystore_dir)
            .join("soft-token")
    }

    /// How many touches this token has approved (the `touches` file; 0 if missing).
    pub fn touches(dir: &Path) -> Result<u64, TokenError> {
        let path = dir.join("touches");
        match fs::read_to_string(&path) {
            Ok(s) => s.trim().parse().map_err(|_| {
                TokenError::Other(format!("{} does not hold a number", path.display()))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(fail("read", &path, e)),
        }
    }

    /// Script the next touches (what a test writes into the `touch` file).
    pub fn set_touch(dir: &Path, script: &str) -> Result<(), TokenError> {
        let path = dir.join("touch");
        fs::write(&path, script).map_err(|e| fail("write", &path, e))
    }

    /// Wait for the scripted "touch"; `Ok` if approved.
    fn touch(&self) -> Result<(), TokenError> {
        let path = self.dir.join("touch");
        let script = match fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(fail("read", &path, e)),
        };
        let words: Vec<&str> = script.split_whitespace().collect();
        let ms = |w: &str| w.parse::<u64>().ok().map(Duration::from_millis);
        let (wait, approve) = match words.as_slice() {
            [] | ["approve"] => (Duration::ZERO, true),
            ["deny"] => (DENY_AFTER, false),
            ["delay", n] if ms(n).is_some() => (ms(n).unwrap_or_default(), true),
            ["timeout", n] if ms(n).is_some() => (ms(n).unwrap_or_default(), false),
            _ => {
                return Err(TokenError::Other(format!(
                    "{} says {:?}; write approve, deny, delay <ms> or timeout <ms>",
                    path.display(),
                    script.trim()
                )));
            }
        };
        std::thread::sleep(wait);
        if !approve {
            return Err(TokenError::TouchTimeout {
                secs: wait.as_secs_f64().ceil() as u64,
            });
        }
        self.count_touch()
    }

    /// Add one to `touches`, atomically (a test may read it at any moment).
    fn count_touch(&self) -> Result<(), TokenError> {
        let n = Self::touches(&self.dir)? + 1;
        let path = self.dir.join("touches");
        let count = format!("{n}\n");
        crate::disk::write_atomic(&path, count.as_bytes(), crate::disk::Place::Replace)
            .map_err(|e| fail("update", &path, e.source))
    }
}

impl Token for SoftToken {
    fn stub(&self) -> &TokenStub {
        &self.stub
    }

    fn agree(&mut self, challenge: &[u8]) -> Result<Zeroizing<[u8; 32]>, TokenError> {
        let peer = PublicKey::from_sec1_bytes(challenge).map_err(|_| {
            TokenError::Other("the keyslot's ephemeral key is not a P-256 point: the keyslot file is damaged; remove it with `tapsign token remove` and enroll the token again".into())
        })?;
        self.touch()?;
        let shared = self.key.diffie_hellman(&peer);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(shared.raw_secret_bytes());
        Ok(out)
    }
}

fn gate() -> Result<(), TokenError> {
    if insecure_allowed() {
        Ok(())
    } else {
        Err(TokenError::SoftRefused)
    }
}

fn fail(action: &str, path: &Path, e: io::Error) -> TokenError {
    TokenError::Other(format!(
        "soft token: cannot {action} {}: {e}",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn token() -> (tempfile::TempDir, SoftToken) {
        let dir = tempfile::tempdir().unwrap();
        let t = SoftToken::create_ungated(&dir.path().join("soft")).unwrap();
        (dir, t)
    }

    fn challenge() -> Vec<u8> {
        let k = SecretKey::try_generate().unwrap();
        k.public_key().to_sec1_point(true).as_bytes().to_vec()
    }

    #[test]
    fn only_exactly_1_allows_the_soft_token() {
        assert!(allowed_by(Some("1")));
        for v in [None, Some(""), Some("0"), Some("yes"), Some("1 ")] {
            assert!(!allowed_by(v), "{v:?}");
        }
    }

    #[test]
    fn create_refuses_to_overwrite_and_open_finds_the_same_key() {
        let (_d, t) = token();
        let again = SoftToken::create_ungated(&t.dir).err().unwrap();
        assert!(again.to_string().contains("already exists"), "{again}");
        let opened = SoftToken::open_ungated(&t.dir).unwrap();
        assert_eq!(opened.stub(), t.stub());
        let TokenStub::Soft { id, public_key } = t.stub() else {
            panic!("the soft token has a soft stub")
        };
        assert_eq!(id.len(), 8);
        assert_eq!(public_key.len(), 66);
        assert!(t.stub().describe().contains("INSECURE"));
    }

    #[test]
    fn the_soft_token_lives_beside_the_keystore() {
        let dir = SoftToken::dir_beside(Path::new("/home/t/.tapsign/keystore"));
        assert_eq!(dir, Path::new("/home/t/.tapsign/soft-token"));
    }

    #[test]
    fn open_without_a_key_is_absent() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            SoftToken::open_ungated(dir.path()),
            Err(TokenError::Absent { .. })
        ));
    }

    #[test]
    fn agree_matches_host_side_ecdh_and_counts_touches() {
        let (_d, mut t) = token();
        let eph = SecretKey::try_generate().unwrap();
        let epk = eph.public_key().to_sec1_point(true).as_bytes().to_vec();
        let token_pk = PublicKey::from_sec1_bytes(&t.stub().ecdh_public_key().unwrap()).unwrap();
        let host = eph.diffie_hellman(&token_pk);
        assert_eq!(&t.agree(&epk).unwrap()[..], &host.raw_secret_bytes()[..]);
        t.agree(&challenge()).unwrap();
        assert_eq!(SoftToken::touches(&t.dir).unwrap(), 2);
    }

    #[test]
    fn deny_times_out_without_counting() {
        let (_d, mut t) = token();
        SoftToken::set_touch(&t.dir, "deny\n").unwrap();
        let start = Instant::now();
        let r = t.agree(&challenge());
        assert!(matches!(r, Err(TokenError::TouchTimeout { .. })));
        assert!(start.elapsed() >= Duration::from_millis(150));
        assert_eq!(SoftToken::touches(&t.dir).unwrap(), 0);
    }

    #[test]
    fn delay_approves_late_and_timeout_refuses_late() {
        let (_d, mut t) = token();
        SoftToken::set_touch(&t.dir, "delay 120").unwrap();
        let start = Instant::now();
        t.agree(&challenge()).unwrap();
        assert!(start.elapsed() >= Duration::from_millis(120));
        SoftToken::set_touch(&t.dir, "timeout 50").unwrap();
        let start = Instant::now();
        assert!(matches!(
            t.agree(&challenge()),
            Err(TokenError::TouchTimeout { .. })
        ));
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert_eq!(SoftToken::touches(&t.dir).unwrap(), 1);
    }

    #[test]
    fn a_garbled_touch_script_or_challenge_is_a_clear_error() {
        let (_d, mut t) = token();
        assert!(matches!(t.agree(b"not a point"), Err(TokenError::Other(_))));
        SoftToken::set_touch(&t.dir, "maybe").unwrap();
        let e = t.agree(&challenge()).err().unwrap();
        assert!(e.to_string().contains("delay <ms>"), "{e}");
        assert_eq!(SoftToken::touches(&t.dir).unwrap(), 0);
    }
}
