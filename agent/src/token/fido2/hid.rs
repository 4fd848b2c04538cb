//! FIDO2 over USB HID, through `ctap-hid-fido2` (pinned at 3.6.1): the thinnest adapter the
//! crate allows.
//!
//! The crate offers no raw CTAPHID transport (its `ctaphid` module is private), so it runs
//! its own CTAP2 client here: the PIN token (CTAP 2.0 getPinToken), and hmac-secret's key
//! agreement, saltEnc/saltAuth and output decryption. What stays shared with the PC/SC path is
//! everything above [`Authenticator`]. Only real hardware runs this file
//! (firmware-notes/fido2-hardware-only.md lists what that leaves untested in CI).
//!
//! Crate behaviour handled here:
//! - it panics when hidapi cannot start (`HidApi::new().expect(..)`) and slices device answers
//!   unchecked: every call runs under `catch_unwind`;
//! - it prints a "touch the sensor" line and hex dumps unless told not to: both are off;
//! - its builders ask for built-in UV by default, which PIN-only keys refuse: every request
//!   says `.pin(..)` or `.without_pin_and_uv()`;
//! - errors are strings: the CTAP status is read back from `response_status err = 0xNN`;
//! - the PIN is passed as `&str` and copied into buffers the crate does not zeroize.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use ctap_hid_fido2::fidokey::get_assertion::get_assertion_params::Extension as Gext;
use ctap_hid_fido2::fidokey::make_credential::make_credential_params::Extension as Mext;
use ctap_hid_fido2::fidokey::{GetAssertionArgsBuilder, MakeCredentialArgsBuilder};
use ctap_hid_fido2::public_key_credential_user_entity::PublicKeyCredentialUserEntity;
use ctap_hid_fido2::{FidoKeyHid, HidParam, LibCfg};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::ctap::Info;
use super::device::{
    Asserted, AssertionRequest, Authenticator, Location, Registered, Registration,
};
use super::error::Fido2Error;
use super::pin_protocol::Protocol;

fn config() -> LibCfg {
    let mut cfg = LibCfg::init();
    cfg.enable_log = false;
    cfg.enable_keep_alive_msg = false;
    cfg.keep_alive_msg = String::new();
    cfg
}

/// Run a crate call; a panic inside it becomes an error, never the agent's end.
fn guarded<T>(path: &str, f: impl FnOnce() -> anyhow::Result<T>) -> Result<T, Fido2Error> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(classify(&e.to_string(), Path::new(path).exists())),
        Err(_) => Err(Fido2Error::Transport(format!(
            "the USB HID library failed on {path} (it panicked); unplug the key, plug it back in, and try again"
        ))),
    }
}

/// A crate error string as a [`Fido2Error`]: the CTAP status when it names one; a read or
/// write failure on a device node that is gone is the key being pulled.
pub(crate) fn classify(message: &str, still_there: bool) -> Fido2Error {
    if let Some(code) = ctap_status(message) {
        return Fido2Error::Status(code);
    }
    if message.starts_with("read err") || message.contains("write error") {
        if !still_there {
            return Fido2Error::Removed;
        }
        return Fido2Error::Transport(
            "the USB key stopped answering; unplug it, plug it back in, and try again".into(),
        );
    }
    Fido2Error::Transport(format!("USB HID: {message}"))
}

/// The status byte in "response_status err = 0x2E CTAP2_ERR_NO_CREDENTIALS ...".
fn ctap_status(message: &str) -> Option<u8> {
    let rest = message.split("response_status err = 0x").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    u8::from_str_radix(&digits, 16).ok()
}

/// A FIDO2 key on USB HID.
pub struct HidAuthenticator {
    dev: FidoKeyHid,
    path: String,
    location: Location,
    info: Info,
}

/// The FIDO2 USB keys present (only the one at `only`, if given). Err: why HID could not be
/// searched at all.
pub fn devices(only: Option<&str>) -> Result<Vec<Box<dyn Authenticator>>, String> {
    let list = catch_unwind(ctap_hid_fido2::get_fidokey_devices).map_err(|_| {
        "USB keys were not searched: hidapi could not start (is udev running, and /dev/hidraw* readable by you?)".to_owned()
    })?;
    let mut out: Vec<Box<dyn Authenticator>> = Vec::new();
    let mut seen = Vec::new();
    for d in list {
        let HidParam::Path(path) = &d.param else {
            continue;
        };
        seen.push(path.clone());
        if only.is_some_and(|p| p != path) {
            continue;
        }
        match open(path, &d.product_string) {
            Ok(a) => out.push(Box::new(a)),
            // A key another program holds, or one that does not speak CTAP2: not ours.
            Err(_) if only.is_none() => {}
            Err(e) => return Err(format!("the FIDO2 USB key at {path} does not answer: {e}")),
        }
    }
    if let Some(p) = only
        && !seen.iter().any(|s| s == p)
    {
        return Err(format!(
            "no FIDO2 USB key at {p} (found: {})",
            if seen.is_empty() {
                "none".into()
            } else {
                seen.join(", ")
            }
        ));
    }
    Ok(out)
}

fn open(path: &str, product: &str) -> Result<HidAuthenticator, Fido2Error> {
    let dev = guarded(path, || {
        FidoKeyHid::new(&[HidParam::Path(path.to_owned())], &config())
    })?;
    let raw = guarded(path, || dev.get_info())?;
    let info = Info {
        versions: raw.versions,
        extensions: raw.extensions,
        aaguid: raw
            .aaguid
            .as_slice()
            .try_into()
            .map_err(|_| Fido2Error::malformed("getInfo has no 16-byte AAGUID"))?,
        options: raw.options,
        pin_protocols: raw
            .pin_uv_auth_protocols
            .into_iter()
            .map(u64::from)
            .collect(),
    };
    Ok(HidAuthenticator {
        dev,
        path: path.to_owned(),
        location: Location::Hid {
            path: path.to_owned(),
            product: product.to_owned(),
        },
        info,
    })
}

fn random<const N: usize>() -> Result<[u8; N], Fido2Error> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|_| Fido2Error::Random)?;
    Ok(out)
}

fn check_rp(rp_id_hash: &[u8], rp_id: &str) -> Result<(), Fido2Error> {
    if rp_id_hash != Sha256::digest(rp_id.as_bytes()).as_slice() {
        return Err(Fido2Error::malformed(
            "its authenticator data is for another rp id",
        ));
    }
    Ok(())
}

impl Authenticator for HidAuthenticator {
    fn location(&self) -> &Location {
        &self.location
    }

    fn info(&mut self) -> Result<Info, Fido2Error> {
        Ok(self.info.clone())
    }

    fn pin_retries(&mut self, protocol: Protocol) -> Result<u32, Fido2Error> {
        self.dev.pin_protocol_version = protocol.number();
        let n = guarded(&self.path, || self.dev.get_pin_retries())?;
        u32::try_from(n).map_err(|_| Fido2Error::malformed("a negative PIN retry count"))
    }

    fn make_credential(&mut self, req: &Registration<'_>) -> Result<Registered, Fido2Error> {
        self.dev.pin_protocol_version = req.protocol.number();
        let challenge = random::<32>()?;
        let user_id = random::<16>()?;
        let user = PublicKeyCredentialUserEntity::new(
            Some(&user_id),
            Some("tapsign"),
            Some(req.display_name),
        );
        let builder = MakeCredentialArgsBuilder::new(req.rp_id, &challenge)
            .extensions(&[Mext::HmacSecret(Some(true))])
            .user_entity(&user);
        let builder = match req.pin {
            Some(pin) => builder.pin(pin.expose()),
            None => builder.without_pin_and_uv(),
        };
        let args = builder.build();
        let att = guarded(&self.path, || self.dev.make_credential_with_args(&args))?;
        check_rp(&att.rpid_hash, req.rp_id)?;
        let hmac_secret = att
            .extensions
            .iter()
            .any(|e| matches!(e, Mext::HmacSecret(Some(true))));
        Ok(Registered {
            credential_id: att.credential_descriptor.id,
            hmac_secret,
        })
    }

    fn get_assertion(&mut self, req: &AssertionRequest<'_>) -> Result<Asserted, Fido2Error> {
        self.dev.pin_protocol_version = req.protocol.number();
        let challenge = random::<32>()?;
        let mut builder =
            GetAssertionArgsBuilder::new(req.rp_id, &challenge).credential_id(req.credential_id);
        if !req.up {
            builder = builder.without_up();
        }
        if let Some(salt) = req.salt {
            builder = builder.extensions(&[Gext::HmacSecret(Some(*salt))]);
        }
        builder = match req.pin {
            Some(pin) => builder.pin(pin.expose()),
            None => builder.without_pin_and_uv(),
        };
        let args = builder.build();
        let mut answers = guarded(&self.path, || self.dev.get_assertion_with_args(&args))?;
        if answers.is_empty() {
            return Err(Fido2Error::malformed("getAssertion returned no assertion"));
        }
        let mut a = answers.swap_remove(0);
        check_rp(&a.rpid_hash, req.rp_id)?;
        let mut hmac_output = None;
        for e in a.extensions.iter_mut() {
            if let Gext::HmacSecret(Some(out)) = e {
                let out: &mut [u8; 32] = out;
                hmac_output = Some(Zeroizing::new(*out));
                zeroize::Zeroize::zeroize(out);
            }
        }
        if req.salt.is_some() && hmac_output.is_none() {
            return Err(Fido2Error::malformed(
                "the assertion carries no hmac-secret output",
            ));
        }
        Ok(Asserted {
            up: a.flags.user_present_result,
            uv: a.flags.user_verified_result,
            hmac_output,
        })
    }
}

/// The identity of the USB device behind a hidraw node, from sysfs (`/sys/class/hidraw/
/// hidrawN/device` links to `.../0003:1050:0407.0042`; the last number grows with every
/// plug-in, so a reused node name is told apart). `None` when the node is gone.
pub fn identity(sys_root: &Path, devnode: &str) -> Option<String> {
    let name = Path::new(devnode).file_name()?;
    let link = sys_root.join("class/hidraw").join(name).join("device");
    let target = std::fs::read_link(link).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctap_statuses_are_read_from_the_crates_error_strings() {
        let e =
            "response_status err = 0x2E CTAP2_ERR_NO_CREDENTIALS    No valid credentials provided.";
        assert_eq!(classify(e, true), Fido2Error::Status(0x2E));
        assert_eq!(
            classify("response_status err = 0x5", true),
            Fido2Error::Status(5)
        );
        assert_eq!(
            classify(
                "response_status err = 0x2F CTAP2_ERR_USER_ACTION_TIMEOUT",
                true
            ),
            Fido2Error::Status(0x2F)
        );
    }

    #[test]
    fn a_read_error_on_a_vanished_node_is_a_pulled_key() {
        assert_eq!(classify("read err = 0xFE", false), Fido2Error::Removed);
        assert!(matches!(
            classify("read err = 0xFE", true),
            Fido2Error::Transport(_)
        ));
        assert!(matches!(
            classify("Failed to open device.", true),
            Fido2Error::Transport(m) if m.contains("Failed to open")
        ));
    }

    #[test]
    fn identity_follows_the_sysfs_link_and_tells_a_replugged_node_apart() {
        let root = tempfile::tempdir().unwrap();
        let node = root.path().join("class/hidraw/hidraw3");
        std::fs::create_dir_all(&node).unwrap();
        std::os::unix::fs::symlink("../../../0003:1050:0407.0042", node.join("device")).unwrap();
        let first = identity(root.path(), "/dev/hidraw3");
        assert_eq!(first.as_deref(), Some("0003:1050:0407.0042"));
        std::fs::remove_file(node.join("device")).unwrap();
        assert_eq!(identity(root.path(), "/dev/hidraw3"), None);
        std::os::unix::fs::symlink("../../../0003:1050:0407.0043", node.join("device")).unwrap();
        assert_ne!(identity(root.path(), "/dev/hidraw3"), first);
    }
}
