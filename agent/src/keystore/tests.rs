//! Behaviour tests: round trips, keyslots, refusals, permissions, atomic writes.
//! Tamper tests (every byte of every file) are in `tests_tamper.rs`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::ledger::MemoryLedger;
use super::*;
use crate::secret::{SecretBytes, SecretString};
use crate::token::soft::SoftToken;

pub(super) struct Fixture {
    pub tmp: tempfile::TempDir,
    pub ks: Keystore,
    pub token: SoftToken,
    pub ledger: MemoryLedger,
}

impl Fixture {
    /// A keystore with one enrolled soft token and no credentials.
    pub fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let ks = Keystore::new(tmp.path().join("home/keystore"));
        let token = soft(tmp.path(), "token-a");
        let mut ledger = MemoryLedger::default();
        ks.create(token.stub(), &mut ledger).unwrap();
        Fixture {
            tmp,
            ks,
            token,
            ledger,
        }
    }

    /// `key add` (no agent pin).
    pub fn add(&mut self, cred: &Credential, replace: bool) -> Result<Added, KeystoreError> {
        self.ks
            .add_credential(cred, replace, None, &mut self.ledger)
    }

    /// `key remove`.
    pub fn remove(&mut self, name: &str) -> Result<super::Removed, KeystoreError> {
        self.ks.remove_credential(name, &mut self.ledger)
    }

    /// The live folder (vault.json, keyslots/, credentials/).
    /// Turn the keystore into one written before manifests: files at the top, no
    /// manifest.json, and no `keystore` line in the record (that tapsign wrote none).
    pub fn make_legacy(&mut self) {
        let live = self.live();
        for name in ["vault.json", "keyslots", "credentials"] {
            fs::rename(live.join(name), self.ks.dir().join(name)).unwrap();
        }
        fs::remove_dir(&live).unwrap();
        fs::remove_file(self.ks.dir().join("manifest.json")).unwrap();
        self.ledger
            .entries
            .retain(|e| !matches!(e, super::ledger::LedgerEntry::Manifest { .. }));
    }

    pub fn live(&self) -> PathBuf {
        self.ks.live_dir().unwrap()
    }

    /// Unlock with token A and run the check an unlock runs.
    pub fn check(&mut self) -> Result<Checked, KeystoreError> {
        let slot = self
            .ks
            .keyslots()?
            .into_iter()
            .flatten()
            .find(|s| &s.stub == self.token.stub())
            .expect("token has a keyslot");
        let vk = self.ks.unwrap_vault(&slot, &mut self.token)?;
        self.ks.check(&vk, &slot, 0, &mut self.ledger)
    }

    /// Rotate with token A's touch, leaving out `remove`; refused files stop it.
    pub fn rotate(&mut self, remove: Option<&str>) -> Result<Rotated, KeystoreError> {
        self.rotate_dropping(remove, super::Dropping::None)
    }

    /// [`Fixture::rotate`], saying what to do with refused files.
    pub fn rotate_dropping(
        &mut self,
        remove: Option<&str>,
        dropping: super::Dropping,
    ) -> Result<Rotated, KeystoreError> {
        let vk = self.unlock();
        let mut none = |s: &TokenStub| -> Result<Box<dyn Token>, KeystoreError> {
            panic!(
                "no token kind here needs to be present, but {} was asked",
                s.id()
            )
        };
        self.ks
            .rotate(&vk, remove, &mut none, &mut self.ledger, dropping)
    }

    /// Plus two credentials (one with a passphrase) and a second token.
    pub fn populated() -> (Fixture, SoftToken) {
        let mut f = Fixture::new();
        f.add(&cred("upbit-main", Exchange::Upbit, None), false)
            .unwrap();
        f.add(
            &cred("binance-alt", Exchange::Binance, Some("PASS-binance-alt")),
            false,
        )
        .unwrap();
        let b = soft(f.tmp.path(), "token-b");
        let vk = f.unlock();
        f.ks.add_keyslot(&vk, b.stub(), &mut f.ledger).unwrap();
        (f, b)
    }

    pub fn unlock(&mut self) -> VaultKey {
        unlock(&self.ks, &mut self.token).unwrap()
    }

    pub fn token_dir(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

pub(super) fn soft(tmp: &Path, name: &str) -> SoftToken {
    SoftToken::create_ungated(&tmp.join(name)).unwrap()
}

/// Find `token`'s keyslot and unwrap it.
pub(super) fn unlock(ks: &Keystore, token: &mut SoftToken) -> Result<VaultKey, KeystoreError> {
    let slot = ks
        .keyslots()?
        .into_iter()
        .flatten()
        .find(|s| &s.stub == token.stub())
        .expect("token has a keyslot");
    ks.unwrap_vault(&slot, token)
}

pub(super) fn api_key(name: &str) -> String {
    format!("AKEY-{name}-7f3a9c")
}

pub(super) fn secret(name: &str) -> String {
    format!("SECRET-{name}-b41e0d")
}

pub(super) fn cred(name: &str, exchange: Exchange, pass: Option<&str>) -> Credential {
    Credential {
        name: name.into(),
        exchange,
        api_key: SecretString::new(api_key(name)),
        secret: SecretBytes::from_slice(secret(name).as_bytes()),
        passphrase: pass.map(|p| SecretString::new(p.into())),
    }
}

/// Every file under `dir`, recursively.
pub(super) fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn round_trip_gives_back_the_same_fields() {
    let (mut f, _) = Fixture::populated();
    let vk = f.unlock();
    let c = f.ks.open_credential(&vk, "binance-alt").unwrap();
    assert_eq!(c.name, "binance-alt");
    assert_eq!(c.exchange, Exchange::Binance);
    assert_eq!(c.api_key.expose(), api_key("binance-alt"));
    assert_eq!(c.secret.expose(), secret("binance-alt").as_bytes());
    assert_eq!(c.passphrase.unwrap().expose(), "PASS-binance-alt");
    let c = f.ks.open_credential(&vk, "upbit-main").unwrap();
    assert_eq!(c.exchange, Exchange::Upbit);
    assert_eq!(c.api_key.expose(), api_key("upbit-main"));
    assert_eq!(c.secret.expose(), secret("upbit-main").as_bytes());
    assert!(c.passphrase.is_none());
}

/// Red-team round 23: every check's line records each credential, and a rotation of 6,000
/// wrote a line a running agent would not take in. `key add` refuses a new name past
/// [`MAX_CREDENTIALS`], saying what to do; replacing one still works.
#[test]
fn key_add_refuses_a_new_name_past_the_most_credentials_a_keystore_holds() {
    let mut f = Fixture::new();
    f.add(&cred("k1", Exchange::Binance, None), false).unwrap();
    let dir = f.live().join("credentials");
    let k1 = fs::read(dir.join("k1.json")).unwrap();
    for i in 1..MAX_CREDENTIALS {
        fs::write(dir.join(format!("filler{i}.json")), &k1).unwrap();
    }
    let err = f
        .add(&cred("k2", Exchange::Binance, None), false)
        .unwrap_err();
    assert!(
        matches!(err, KeystoreError::TooManyCredentials { max, .. } if max == MAX_CREDENTIALS),
        "{err}"
    );
    assert!(err.to_string().contains("tapsign key remove"), "{err}");
    assert!(!dir.join("k2.json").exists());
    // Its recheck: files written past the most (not by `key add`) were counted as the most.
    fs::write(dir.join("extra.json"), &k1).unwrap();
    let said = f
        .add(&cred("k2", Exchange::Binance, None), false)
        .unwrap_err()
        .to_string();
    assert!(
        said.contains(&format!("holds {} credential files", MAX_CREDENTIALS + 1))
            && said.contains("not stored by `tapsign key add`"),
        "{said}"
    );
    fs::remove_file(dir.join("extra.json")).unwrap();
    f.add(&cred("k1", Exchange::Binance, None), true).unwrap();
    fs::remove_file(dir.join("filler1.json")).unwrap();
    f.add(&cred("k2", Exchange::Binance, None), false).unwrap();
}

#[test]
fn listing_shows_metadata_sorted() {
    let (f, _) = Fixture::populated();
    let list: Vec<_> =
        f.ks.list_credentials()
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
    let names: Vec<_> = list.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["binance-alt", "upbit-main"]);
    assert_eq!(list[1].exchange, Exchange::Upbit);
    assert!(list[1].created > 1_700_000_000);
    assert_eq!(list[1].path, f.live().join("credentials/upbit-main.json"));
}

#[test]
fn initialization_is_detected_and_create_runs_once() {
    let tmp = tempfile::tempdir().unwrap();
    let ks = Keystore::new(tmp.path().join("ks"));
    assert!(!ks.is_initialized().unwrap());
    assert!(matches!(
        ks.keyslots(),
        Err(KeystoreError::NotInitialized { .. })
    ));
    let mut ledger = MemoryLedger::default();
    let e = ks
        .add_credential(&cred("x", Exchange::Upbit, None), false, None, &mut ledger)
        .err()
        .unwrap();
    assert!(matches!(e, KeystoreError::NotInitialized { .. }), "{e}");
    let t = soft(tmp.path(), "t");
    ks.create(t.stub(), &mut ledger).unwrap();
    assert!(ks.is_initialized().unwrap());
    let e = ks.create(t.stub(), &mut ledger).err().unwrap();
    assert!(matches!(e, KeystoreError::AlreadyInitialized { .. }), "{e}");
}

#[test]
fn second_keyslot_either_token_alone_unwraps() {
    let (f, b) = Fixture::populated();
    assert_eq!(f.ks.keyslots().unwrap().len(), 2);
    let ks = f.ks.clone();
    // Fresh handles, as after a restart: each token on its own.
    for dir in ["token-a", "token-b"] {
        let mut t = SoftToken::open_ungated(&f.token_dir(dir)).unwrap();
        let vk = unlock(&ks, &mut t).unwrap();
        let c = ks.open_credential(&vk, "upbit-main").unwrap();
        assert_eq!(c.secret.expose(), secret("upbit-main").as_bytes());
    }
    // Removing A (a rotation, with A's own touch) leaves B working.
    let mut f = f;
    f.rotate(Some(&f.token.stub().id())).unwrap();
    let mut b = SoftToken::open_ungated(&f.token_dir("token-b")).unwrap_or(b);
    unlock(&ks, &mut b).unwrap();
}

#[test]
fn enrolling_the_same_token_twice_is_refused() {
    let mut f = Fixture::new();
    let vk = f.unlock();
    let e =
        f.ks.add_keyslot(&vk, f.token.stub(), &mut f.ledger)
            .err()
            .unwrap();
    assert!(
        matches!(
            e,
            KeystoreError::Exists {
                what: "keyslot",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn wrong_token_is_refused_before_any_touch() {
    let f = Fixture::new();
    let mut other = soft(f.tmp.path(), "other");
    let slot = f.ks.keyslots().unwrap().remove(0).unwrap();
    let e = f.ks.unwrap_vault(&slot, &mut other).err().unwrap();
    assert!(
        matches!(e, KeystoreError::Token(TokenError::WrongToken { .. })),
        "{e}"
    );
    assert!(e.to_string().contains(&slot.stub.describe()), "{e}");
    assert_eq!(SoftToken::touches(&f.token_dir("other")).unwrap(), 0);
}

/// A token that claims another's stub but holds a different key.
struct Impostor {
    stub: TokenStub,
    inner: SoftToken,
}

impl Token for Impostor {
    fn stub(&self) -> &TokenStub {
        &self.stub
    }
    fn agree(&mut self, c: &[u8]) -> Result<zeroize::Zeroizing<[u8; 32]>, TokenError> {
        self.inner.agree(c)
    }
}

#[test]
fn a_token_with_the_wrong_key_gets_a_clear_error_not_garbage() {
    let f = Fixture::new();
    let slot = f.ks.keyslots().unwrap().remove(0).unwrap();
    let mut imp = Impostor {
        stub: slot.stub.clone(),
        inner: soft(f.tmp.path(), "other"),
    };
    let e = f.ks.unwrap_vault(&slot, &mut imp).err().unwrap();
    assert!(matches!(e, KeystoreError::KeyslotLocked { .. }), "{e}");
    assert_eq!(e.path(), Some(slot.path.as_path()));
}

#[test]
fn a_refused_touch_passes_the_token_error_through() {
    let mut f = Fixture::new();
    SoftToken::set_touch(&f.token_dir("token-a"), "deny").unwrap();
    let e = unlock(&f.ks, &mut f.token).err().unwrap();
    assert!(
        matches!(e, KeystoreError::Token(TokenError::TouchTimeout { .. })),
        "{e}"
    );
    SoftToken::set_touch(&f.token_dir("token-a"), "delay 20").unwrap();
    f.unlock();
    assert_eq!(SoftToken::touches(&f.token_dir("token-a")).unwrap(), 1);
}

#[test]
fn no_file_holds_a_secret_in_clear() {
    let (mut f, _) = Fixture::populated();
    let vk_hex = hex::encode(&*f.unlock().to_bytes());
    let mut needles: Vec<String> = vec![vk_hex, "PASS-binance-alt".into()];
    for n in ["upbit-main", "binance-alt"] {
        needles.extend([
            api_key(n),
            secret(n),
            hex::encode(api_key(n)),
            hex::encode(secret(n)),
        ]);
    }
    let all = files(f.ks.dir());
    assert_eq!(all.len(), 6, "{all:?}");
    for path in all {
        let bytes = fs::read(&path).unwrap();
        for needle in &needles {
            let found = bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
            assert!(!found, "{} contains {needle}", path.display());
        }
    }
}

#[test]
fn an_existing_name_is_refused_unless_replace() {
    let (mut f, _) = Fixture::populated();
    let e = f
        .add(&cred("upbit-main", Exchange::Binance, None), false)
        .err()
        .unwrap();
    assert!(
        matches!(
            e,
            KeystoreError::Exists {
                what: "credential",
                ..
            }
        ),
        "{e}"
    );
    let mut newer = cred("upbit-main", Exchange::Upbit, None);
    newer.secret = SecretBytes::from_slice(b"rotated");
    f.add(&newer, true).unwrap();
    let vk = f.unlock();
    assert_eq!(
        f.ks.open_credential(&vk, "upbit-main")
            .unwrap()
            .secret
            .expose(),
        b"rotated"
    );
}

#[test]
fn remove_credential_and_bad_names() {
    let (mut f, _) = Fixture::populated();
    f.remove("upbit-main").unwrap();
    let vk = f.unlock();
    let e = f.ks.open_credential(&vk, "upbit-main").err().unwrap();
    assert!(matches!(e, KeystoreError::NotFound { .. }), "{e}");
    let e = f.remove("upbit-main").err().unwrap();
    assert!(matches!(e, KeystoreError::NotFound { .. }), "{e}");
    for bad in ["../vault", ".hidden", "a/b", ""] {
        let e = f.ks.open_credential(&vk, bad).err().unwrap();
        assert!(matches!(e, KeystoreError::InvalidName(_)), "{bad}: {e}");
    }
    assert_eq!(f.ks.list_credentials().unwrap().len(), 1);
}

#[test]
fn removing_the_last_keyslot_is_refused() {
    let (mut f, b) = Fixture::populated();
    let e = f.rotate(Some("soft-00000000")).err().unwrap();
    assert!(matches!(e, KeystoreError::NotFound { .. }), "{e}");
    f.rotate(Some(&b.stub().id())).unwrap();
    let e = f.rotate(Some(&f.token.stub().id())).err().unwrap();
    assert!(matches!(e, KeystoreError::LastKeyslot { .. }), "{e}");
    assert!(e.to_string().contains("enroll another token"), "{e}");
    assert_eq!(f.ks.keyslots().unwrap().len(), 1);
}

#[test]
fn files_are_0600_and_folders_0700() {
    let (f, _) = Fixture::populated();
    assert_eq!(mode(f.ks.dir()), 0o700);
    for dir in ["", "keyslots", "credentials"] {
        assert_eq!(mode(&f.live().join(dir)), 0o700, "{dir}");
    }
    // Folders the keystore had to create on the way are private too.
    assert_eq!(mode(f.ks.dir().parent().unwrap()), 0o700);
    for p in files(f.ks.dir()) {
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
}

#[test]
fn a_folder_or_file_others_can_use_is_an_error_naming_it() {
    let (f, _) = Fixture::populated();
    let dir = f.ks.dir().to_owned();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let e = f.ks.is_initialized().err().unwrap();
    assert!(
        matches!(e, KeystoreError::InsecurePermissions { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("chmod 700"), "{e}");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    let file = f.live().join("credentials/upbit-main.json");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
    let list = f.ks.list_credentials().unwrap();
    let e = list.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert!(
        matches!(e, KeystoreError::InsecurePermissions { .. }),
        "{e}"
    );
    assert_eq!(e.path(), Some(file.as_path()));
    assert_eq!(list.iter().filter(|r| r.is_ok()).count(), 1);
}

#[test]
fn a_live_folder_that_is_a_symbolic_link_is_refused() {
    // Its files could then sit in a folder others can write; the keystore's other folders
    // were held to this already, the live one was not.
    let (mut f, _) = Fixture::populated();
    let live = f.live();
    let elsewhere = f.ks.dir().parent().unwrap().join("elsewhere");
    fs::rename(&live, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &live).unwrap();
    let e = f.check().unwrap_err();
    assert!(
        matches!(e, KeystoreError::InsecurePermissions { .. }),
        "{e}"
    );
    assert_eq!(e.path(), Some(live.as_path()));
    let e = f
        .add(&cred("new-one", Exchange::Upbit, None), false)
        .unwrap_err();
    assert!(
        matches!(e, KeystoreError::InsecurePermissions { .. }),
        "{e}"
    );
}

#[test]
fn a_failed_write_leaves_the_old_file_and_no_temp_files() {
    let (mut f, _) = Fixture::populated();
    let path = f.live().join("credentials/upbit-main.json");
    let before = fs::read(&path).unwrap();
    files::FAIL_AFTER.with(|w| w.set(Some(0)));
    let e = f
        .add(&cred("upbit-main", Exchange::Upbit, None), true)
        .err();
    let e2 = f.add(&cred("new-one", Exchange::Upbit, None), false).err();
    files::FAIL_AFTER.with(|w| w.set(None));
    assert!(matches!(e, Some(KeystoreError::Io { .. })), "{e:?}");
    assert!(matches!(e2, Some(KeystoreError::Io { .. })), "{e2:?}");
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(files(f.ks.dir()).len(), 6, "{:?}", files(f.ks.dir()));
    let vk = f.unlock();
    f.ks.open_credential(&vk, "upbit-main").unwrap();
}

#[test]
fn a_failed_create_leaves_no_keystore_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let ks = Keystore::new(tmp.path().join("ks"));
    let t = soft(tmp.path(), "t");
    let mut ledger = MemoryLedger::default();
    // Fail vault.json, then the keyslot, then the manifest (the commit).
    for let_through in [0, 1, 2] {
        files::FAIL_AFTER.with(|w| w.set(Some(let_through)));
        let e = ks.create(t.stub(), &mut ledger).err();
        files::FAIL_AFTER.with(|w| w.set(None));
        assert!(matches!(e, Some(KeystoreError::Io { .. })), "{e:?}");
        assert!(!ks.is_initialized().unwrap());
        assert!(files(ks.dir()).is_empty(), "{:?}", files(ks.dir()));
    }
    ks.create(t.stub(), &mut ledger).unwrap();
}

#[test]
fn a_swapped_vault_json_is_caught_at_unlock() {
    let (mut f, _) = Fixture::populated();
    let other = Fixture::new();
    let vault = f.live().join("vault.json");
    fs::copy(other.live().join("vault.json"), &vault).unwrap();
    let e = unlock(&f.ks, &mut f.token).err().unwrap();
    assert!(matches!(e, KeystoreError::VaultMismatch { .. }), "{e}");
    assert_eq!(e.path(), Some(vault.as_path()));
}

#[test]
fn a_vault_key_from_another_keystore_cannot_enroll_or_open() {
    let (f, _) = Fixture::populated();
    let mut other = Fixture::new();
    let foreign = other.unlock();
    let mut ledger = MemoryLedger::default();
    let e =
        f.ks.add_keyslot(&foreign, other.token.stub(), &mut ledger)
            .err()
            .unwrap();
    assert!(matches!(e, KeystoreError::VaultMismatch { .. }), "{e}");
    let e = f.ks.open_credential(&foreign, "upbit-main").err().unwrap();
    assert!(matches!(e, KeystoreError::CredentialLocked { .. }), "{e}");
}

#[test]
fn a_missing_vault_json_is_damage_not_a_fresh_keystore() {
    let (mut f, _) = Fixture::populated();
    let vault = f.live().join("vault.json");
    fs::remove_file(&vault).unwrap();
    let e = f.ks.is_initialized().err().unwrap();
    assert_eq!(e.path(), Some(vault.as_path()), "{e}");
    let e = f.ks.create(f.token.stub(), &mut f.ledger).err().unwrap();
    assert_eq!(e.path(), Some(vault.as_path()), "{e}");
}

#[test]
fn a_bad_credential_does_not_hide_the_others() {
    let (mut f, _) = Fixture::populated();
    let bad = f.live().join("credentials/binance-alt.json");
    fs::write(&bad, b"{ nonsense").unwrap();
    let stray = f.live().join("credentials/notes.txt");
    fs::write(&stray, b"hello").unwrap();
    fs::write(
        f.live().join("credentials/.upbit-main.json.0a1b.tmp"),
        b"crash leftover",
    )
    .unwrap();
    let list = f.ks.list_credentials().unwrap();
    assert_eq!(list.len(), 3);
    let errs: Vec<_> = list.iter().filter_map(|r| r.as_ref().err()).collect();
    let mut paths: Vec<_> = errs.iter().map(|e| e.path().unwrap().to_owned()).collect();
    paths.sort();
    assert_eq!(paths, [bad.clone(), stray]);
    assert!(
        matches!(errs[0], KeystoreError::Damaged { .. }),
        "{}",
        errs[0]
    );
    assert!(
        matches!(errs[1], KeystoreError::Stray { .. }),
        "{}",
        errs[1]
    );
    let vk = f.unlock();
    f.ks.open_credential(&vk, "upbit-main").unwrap();
    let e = f.ks.open_credential(&vk, "binance-alt").err().unwrap();
    assert_eq!(e.path(), Some(bad.as_path()));
}

#[test]
fn errors_say_what_to_do() {
    let e = KeystoreError::damaged("/k/credentials/x.json", "its checksum does not match");
    let msg = e.to_string();
    assert!(
        msg.contains("/k/credentials/x.json") && msg.contains("key remove x"),
        "{msg}"
    );
    let e = KeystoreError::damaged("/k/keyslots/soft-1.json", "truncated");
    assert!(e.to_string().contains("enroll that token again"), "{e}");
    let e = KeystoreError::damaged("/k/vault.json", "truncated");
    assert!(e.to_string().contains("restore it from a backup"), "{e}");
}
