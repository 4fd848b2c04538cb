//! Remote bots: a bot on another host signs through the agent's socket forwarded by a real
//! OpenSSH, and `tapsign lock` on the trader's workstation stops it at once. Both directions
//! of docs/remote-bots.md run here, with the authorized_keys lines that page gives, against
//! an sshd on a private loopback (tests/src/sshd.rs); "workstation" and "bot host" are two
//! folders and two users on it.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use tapsign_proto::client::Client;
use tapsign_proto::{ErrorCode, EventKind, ProtoError, SignRequest};
use tapsign_tests::sshd::{Forward, Sshd, keygen, private_network};
use tapsign_tests::{World, assert_hmac_signed};

const NOBODY: u32 = 65534;
const SECRET: &str = "remote-bot-secret-0815";

fn order() -> SignRequest {
    SignRequest {
        key: "binance-main".into(),
        method: "POST".into(),
        path: "/api/v3/order".into(),
        query: "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=20000"
            .into(),
        body: String::new(),
        kind: Default::default(),
    }
}

/// Sign one order through `client` and check the signature against the secret, computed
/// here independently of the agent.
fn signs_correctly(client: &mut Client) {
    let signed = client.sign(order()).unwrap();
    assert_hmac_signed(&signed.query, SECRET.as_bytes());
    assert_eq!(signed.headers["X-MBX-APIKEY"], "ak-remote");
}

fn refused_as_locked(client: &mut Client) {
    match client.sign(order()) {
        Err(ProtoError::Agent { code, .. }) => assert_eq!(code, ErrorCode::Locked),
        other => panic!("a signature after lock: {other:?}"),
    }
}

/// A private folder on the "bot host", as its user would make it.
fn bot_folder(uid: u32) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("tapsign-bothost-")
        .tempdir()
        .unwrap();
    std::os::unix::fs::chown(dir.path(), Some(uid), Some(uid)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// A socket file nobody listens on: what a forward that died leaves behind.
fn stale_socket(path: &Path) {
    drop(std::os::unix::net::UnixListener::bind(path).unwrap());
    assert!(path.exists());
}

fn mode_and_owner(path: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.mode() & 0o777, m.uid())
}

#[test]
fn a_bot_signs_through_ssh_local_forward_and_lock_stops_it_at_once() {
    if !private_network() {
        return;
    }
    // The trader's workstation: the agent runs as the trader (here the user nobody), and the
    // bot host's key may log in as the trader only to forward.
    let mut w = World::new();
    w.become_user(NOBODY);
    w.setup_key("binance-main", "binance", "ak-remote", SECRET);
    w.start_agent();
    w.run(&["unlock"], "").ok();
    let keys = tempfile::tempdir().unwrap();
    let bot_key = keygen(keys.path(), "bot-host", 0);
    // A second key with `permitopen`, the usual way to restrict -L: OpenSSH then refuses
    // every Unix-socket forward too (it matches only TCP destinations), which is why
    // docs/remote-bots.md cannot offer a TCP-free -L and recommends -R.
    let permitopen_key = keygen(keys.path(), "bot-host-permitopen", 0);
    let sshd = Sshd::start(
        &format!(
            "from=\"127.0.0.1\",restrict,port-forwarding,command=\"/bin/false\" {}\n\
             from=\"127.0.0.1\",restrict,port-forwarding,permitopen=\"localhost:1\",command=\"/bin/false\" {}",
            bot_key.public, permitopen_key.public
        ),
        // docs/remote-bots.md's block for the bot host's logins into the workstation.
        "AllowUsers nobody\n\
         Match Address 127.0.0.1\n\
         \x20   AllowStreamLocalForwarding local\n\
         \x20   AllowAgentForwarding no\n\
         \x20   X11Forwarding no\n\
         \x20   PermitTunnel no\n\
         \x20   PermitTTY no\n",
    );

    // The bot host (user root here): the forwarded socket goes in a private folder, where a
    // dead forward left its socket file behind.
    let bot = bot_folder(0);
    let bot_sock = bot.path().join("tapsign.sock");
    stale_socket(&bot_sock);
    let spec = format!("{}:{}", bot_sock.display(), w.sock.display());
    let without_unlink = sshd
        .ssh(&bot_key, "nobody", &["-N", "-L", &spec])
        .output()
        .unwrap();
    assert!(!without_unlink.status.success());
    let stderr = String::from_utf8_lossy(&without_unlink.stderr);
    assert!(stderr.contains("Address already in use"), "{stderr}");

    let forward = |key| {
        let args = ["-o", "StreamLocalBindUnlink=yes", "-N", "-L", &spec];
        Forward::start(
            sshd.ssh(key, "nobody", &args),
            &bot_sock,
            keys.path().join("ssh.log"),
        )
    };
    {
        let _refused = forward(&permitopen_key);
        assert!(Client::connect(&bot_sock, "remote-bot/1").is_err());
        let denied = format!(
            "connect to path {}, but the request was denied",
            w.sock.display()
        );
        assert!(sshd.log().contains(&denied), "{}", sshd.log());
    }
    let fwd = forward(&bot_key);
    // ssh made the socket its user's, readable by nobody else (StreamLocalBindMask 0177).
    assert_eq!(mode_and_owner(&bot_sock), (0o600, 0));

    let mut client = Client::connect(&bot_sock, "remote-bot/1")
        .unwrap_or_else(|e| panic!("{e}: sshd: {}\nssh: {}", sshd.log(), fwd.log()));
    signs_correctly(&mut client);
    signs_correctly(&mut client);

    // The trader locks: the bot's very next signature is refused, on the same connection.
    w.run(&["lock"], "").ok();
    refused_as_locked(&mut client);

    drop(fwd);
}

/// Sign round trips on the two clients in turn, `n` each, so both see the same load on a
/// shared machine; the p50 and p99 of each, in microseconds.
fn latency(local: &mut Client, remote: &mut Client, n: usize) -> [(u128, u128); 2] {
    let mut times = [Vec::with_capacity(n), Vec::with_capacity(n)];
    for _ in 0..n {
        for (i, client) in [&mut *local, &mut *remote].into_iter().enumerate() {
            let start = Instant::now();
            client.sign(order()).unwrap();
            times[i].push(start.elapsed().as_micros());
        }
    }
    times.map(|mut t| {
        t.sort_unstable();
        (t[n / 2], t[n * 99 / 100])
    })
}

#[test]
fn a_bot_signs_through_a_forward_the_workstation_opens_and_hears_the_lock() {
    if !private_network() {
        return;
    }
    // The recommended direction: the workstation logs into the bot host and offers the
    // agent's socket there (-R). The bot host's sshd replaces a stale socket itself.
    let mut w = World::new();
    w.setup_key("binance-main", "binance", "ak-remote", SECRET);
    w.start_agent();
    w.run(&["unlock"], "").ok();
    let keys = tempfile::tempdir().unwrap();
    let workstation_key = keygen(keys.path(), "workstation", 0);
    // TCP forwards are pinned to a port nothing listens on (OpenSSH has no "none" for
    // these key options); Unix-socket listens are not covered by permitlisten and work.
    let sshd = Sshd::start(
        &format!(
            "restrict,port-forwarding,permitlisten=\"localhost:1\",permitopen=\"localhost:1\",command=\"/bin/false\" {}",
            workstation_key.public
        ),
        // docs/remote-bots.md's block for the workstation's logins into the bot host.
        "AllowUsers root\nPermitRootLogin prohibit-password\n\
         Match User root\n\
         \x20   AllowStreamLocalForwarding remote\n\
         \x20   StreamLocalBindUnlink yes\n\
         \x20   AllowAgentForwarding no\n\
         \x20   X11Forwarding no\n\
         \x20   PermitTunnel no\n\
         \x20   PermitTTY no\n",
    );
    let bot = bot_folder(0);
    let bot_sock = bot.path().join("tapsign.sock");
    stale_socket(&bot_sock);
    let spec = format!("{}:{}", bot_sock.display(), w.sock.display());
    let _fwd = Forward::start(
        sshd.ssh(&workstation_key, "root", &["-N", "-R", &spec]),
        &bot_sock,
        keys.path().join("ssh.log"),
    );
    // sshd made the socket the bot user's, private (its StreamLocalBindMask, 0177).
    assert_eq!(mode_and_owner(&bot_sock), (0o600, 0));

    let mut remote = Client::connect(&bot_sock, "remote-bot/1").unwrap();
    signs_correctly(&mut remote);
    let mut events = Client::connect(&bot_sock, "remote-bot-events/1")
        .unwrap()
        .subscribe()
        .unwrap();
    events.set_timeout(Some(Duration::from_secs(10))).unwrap();

    // How much the forward adds (docs/remote-bots.md quotes this; nothing is asserted on it).
    let mut local = w.client();
    let n = 300;
    let [(local_p50, local_p99), (fwd_p50, fwd_p99)] = latency(&mut local, &mut remote, n);
    eprintln!(
        "latency: sign round trip over {n} signatures: local socket p50 {local_p50} us, p99 {local_p99} us; \
         through the ssh forward (loopback) p50 {fwd_p50} us, p99 {fwd_p99} us"
    );

    w.run(&["lock"], "").ok();
    refused_as_locked(&mut remote);
    let ev = events.next_event().unwrap();
    assert_eq!(ev.event, EventKind::Locked, "{ev:?}");

    // The workstation's key opens no TCP forward through the bot host (permitopen), nor a
    // shell (command="/bin/false" and -N aside, restrict forbids a tty).
    let tcp = sshd
        .ssh(&workstation_key, "root", &["-W", "127.0.0.1:22"])
        .output()
        .unwrap();
    assert!(!tcp.status.success(), "{tcp:?}");
    assert!(
        sshd.log()
            .contains("connect to host 127.0.0.1 port 22, but the request was denied"),
        "{}",
        sshd.log()
    );
}
