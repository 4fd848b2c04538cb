//! Independent PIV clients judge the emulator: yubico-piv-tool, ykman 4 and OpenSC must see
//! a YubiKey and get the same answers a real one gives. When a tool disagrees with the
//! emulator, the emulator is what gets fixed.

// Helpers outside #[test] fns panic on purpose too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use p256::PublicKey;
use p256::pkcs8::DecodePublicKey;
use tapsign_vyk::{Config, Stack, harness};
use yubikey::piv::{self, SlotId};
use yubikey::{PinPolicy, Serial, TouchPolicy, YubiKey};

const READER: &str = "Virtual PCD 00 00";
const DEFAULT_MGM: &str = "010203040506070801020304050607080102030405060708";

fn config(version: [u8; 3]) -> Config {
    Config {
        version,
        serial: 7_654_321,
        ..Config::default()
    }
}

/// Runs a tool inside the stack's namespace; panics with its output and pcscd's log if it
/// fails, else returns stdout.
fn tool(stack: &Stack, dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{stdout}\n{}\n--- pcscd ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        stack.pcscd_log()
    );
    stdout
}

fn metadata_9d(serial: u32) -> (Option<(PinPolicy, TouchPolicy)>, PublicKey) {
    let mut yk = YubiKey::open_by_serial(Serial(serial)).unwrap();
    let meta = piv::metadata(&mut yk, SlotId::KeyManagement).unwrap();
    let spki = meta.public.unwrap();
    let key = PublicKey::from_sec1_bytes(spki.subject_public_key.raw_bytes()).unwrap();
    (meta.policy, key)
}

fn pem_key(path: &Path) -> PublicKey {
    PublicKey::from_public_key_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// yubico-piv-tool with the reader named, run in the stack.
fn piv_tool(stack: &Stack, dir: &Path, line: &str) -> String {
    let args = [&["-r", READER][..], &words(line)].concat();
    tool(stack, dir, "yubico-piv-tool", &args)
}

/// ykman with the full reader name: both vpcd readers match "Virtual PCD", and ykman
/// refuses to choose between them.
fn ykman(stack: &Stack, dir: &Path, line: &str) -> String {
    let args = [&["--reader", READER][..], &words(line)].concat();
    tool(stack, dir, "ykman", &args)
}

#[test]
fn yubico_piv_tool_status_and_generate_on_3des_firmware() {
    harness::run_with_tools(&["yubico-piv-tool"], &[config([5, 4, 3])], |stack| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let status = piv_tool(stack, d, "-a status");
        for line in [
            "Version:\t5.4.3",
            "Serial Number:\t7654321",
            "PIN tries left:\t3",
        ] {
            assert!(status.contains(line), "{line:?} missing from:\n{status}");
        }
        piv_tool(
            stack,
            d,
            "-a generate -s 9d -A ECCP256 --touch-policy=always -o pub.pem",
        );
        let (policy, key) = metadata_9d(7_654_321);
        // 9D's default PIN policy is Once.
        assert_eq!(policy, Some((PinPolicy::Once, TouchPolicy::Always)));
        assert_eq!(key, pem_key(&d.join("pub.pem")));
    });
}

/// yubico-piv-tool 2.2.0 (Debian 12) speaks only 3DES management keys, so it cannot
/// authenticate to a 5.7 key's AES-192 default: a real 5.7 key refuses it the same way.
#[test]
fn yubico_piv_tool_2_2_cannot_authenticate_to_aes_firmware() {
    harness::run_with_tools(&["yubico-piv-tool"], &[config([5, 7, 1])], |stack| {
        let version = Command::new("yubico-piv-tool")
            .arg("--version")
            .output()
            .unwrap();
        let version = String::from_utf8_lossy(&version.stdout).into_owned();
        if !version.contains(" 2.2.") {
            tapsign_skip::skip(&format!("pinned to yubico-piv-tool 2.2 (have {version})"));
            return;
        }
        let out = Command::new("yubico-piv-tool")
            .args(["-r", READER, "-a", "generate", "-s", "9d", "-A", "ECCP256"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}", stack.pcscd_log());
        assert!(stderr.contains("Failed authentication"), "{stderr}");
    });
}

#[test]
fn ykman_info_and_generate_on_aes_firmware() {
    harness::run_with_tools(&["ykman"], &[config([5, 7, 1])], |stack| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let info = ykman(stack, d, "piv info");
        for line in [
            "PIV version: 5.7.1",
            "PIN tries remaining: 3/3",
            "Management key algorithm: AES192",
        ] {
            assert!(info.contains(line), "{line:?} missing from:\n{info}");
        }
        let generate = format!(
            "piv keys generate -a ECCP256 --pin-policy once --touch-policy always \
             -m {DEFAULT_MGM} 9d pub.pem"
        );
        ykman(stack, d, &generate);
        // With no certificate in 9D, `export` can only answer from GET METADATA. (ykman 4
        // has no `piv keys info`; that arrived in ykman 5.)
        ykman(stack, d, "piv keys export 9d exported.pem");
        let generated = pem_key(&d.join("pub.pem"));
        assert_eq!(pem_key(&d.join("exported.pem")), generated);
        let (policy, key) = metadata_9d(7_654_321);
        assert_eq!(policy, Some((PinPolicy::Once, TouchPolicy::Always)));
        assert_eq!(key, generated);
    });
}

fn opensc_module() -> Option<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
        "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
        "/usr/lib/opensc-pkcs11.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// Splits a command line at spaces (none of these arguments contains one).
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// OpenSC's PIV driver derives with the card; openssl derives on the host with the same
/// peer key: the two must agree. OpenSC only lists a key whose slot holds a certificate, so
/// one carrying the card's public key (signed by a throwaway key) goes into 9D first.
#[test]
fn opensc_ecdh_derive_equals_openssl() {
    let tools = ["yubico-piv-tool", "pkcs11-tool", "openssl"];
    harness::run_with_tools(&tools, &[config([5, 4, 3])], |stack| {
        let Some(module) = opensc_module() else {
            tapsign_skip::skip("opensc-pkcs11.so not found (install opensc-pkcs11)");
            return;
        };
        let module = module.to_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let piv_tool = |line: &str| piv_tool(stack, d, line);
        let openssl = |line: &str| tool(stack, d, "openssl", &words(line));
        let ec = "-algorithm EC -pkeyopt ec_paramgen_curve:P-256";
        piv_tool("-a generate -s 9d -A ECCP256 --touch-policy=always -o pub.pem");
        openssl(&format!("genpkey {ec} -out ca.key"));
        openssl("req -new -key ca.key -subj /CN=vyk -out req.csr");
        openssl(
            "x509 -req -in req.csr -signkey ca.key -force_pubkey pub.pem -days 1 -out cert.pem",
        );
        piv_tool("-a import-certificate -s 9d -i cert.pem");
        openssl(&format!("genpkey {ec} -out peer.key"));
        openssl("pkey -in peer.key -pubout -outform DER -out peer.der");
        let touches = stack.key(0).touch().touches();
        let derive = format!(
            "--module {module} --login --pin 123456 --derive -m ECDH1-DERIVE --id 03 \
             --input-file peer.der --output-file card.bin"
        );
        tool(stack, d, "pkcs11-tool", &words(&derive));
        openssl("pkeyutl -derive -inkey peer.key -peerkey pub.pem -out host.bin");
        let card = std::fs::read(d.join("card.bin")).unwrap();
        let host = std::fs::read(d.join("host.bin")).unwrap();
        assert_eq!(card.len(), 32);
        assert_eq!(card, host);
        let touched = stack.key(0).touch().touches() - touches;
        assert_eq!(touched, 1, "one derive with touch policy Always, one touch");
    });
}

/// ykman signs a self-signed certificate with the card (ECDSA), changes the management key
/// to AES-256 (SET MGM KEY), and resets the applet (it blocks PIN and PUK first, as RESET
/// requires on a real key).
#[test]
fn ykman_selfsigned_certificate_key_change_and_reset() {
    harness::run_with_tools(&["ykman", "openssl"], &[config([5, 7, 1])], |stack| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ykman = |line: &str| ykman(stack, d, line);
        ykman(&format!(
            "piv keys generate -a ECCP256 -m {DEFAULT_MGM} 9a pub.pem"
        ));
        ykman(&format!(
            "piv certificates generate -m {DEFAULT_MGM} -P 123456 -s CN=vyk 9a pub.pem"
        ));
        ykman("piv certificates export 9a cert.pem");
        // The signature the card made verifies under the certificate's own key.
        tool(
            stack,
            d,
            "openssl",
            &words("verify -CAfile cert.pem cert.pem"),
        );
        let aes256 = DEFAULT_MGM.repeat(2)[..64].to_string();
        ykman(&format!(
            "piv access change-management-key -m {DEFAULT_MGM} -n {aes256} -a AES256 -f"
        ));
        assert!(ykman("piv info").contains("Management key algorithm: AES256"));
        ykman("piv reset -f");
        let info = ykman("piv info");
        assert!(info.contains("Management key algorithm: AES192"), "{info}");
        assert!(info.contains("Using default Management key"), "{info}");
        assert!(
            !info.contains("Slot 9a"),
            "reset must drop the certificate:\n{info}"
        );
    });
}
