//! The documentation runs. Every fenced block in README.md, docs/ and firmware-notes/ says
//! what it is, and is checked for it:
//!
//! - `console` transcripts run against the `tapsign` under test, with a private agent, and
//!   must print what they show (`docs_support/transcript.rs` has the format);
//! - every `tapsign ...` command in a block or in the text parses as the CLI reads it;
//! - protocol messages in docs/protocol.md are the golden frames byte for byte, those the agent
//!   itself produces are asked of a real agent, and JSON messages elsewhere decode strictly;
//! - config.toml snippets load, and docs/defaults.md's is the built-in defaults;
//! - examples that cannot run here (a YubiKey, a network, systemd, another host) carry a
//!   `<!-- doctest: skip: WHY -->` marker and are listed with their reason on every run.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod docs_support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use clap::Parser;
use docs_support::markdown::{self, Block};
use docs_support::transcript::{self, Sandbox};
use docs_support::{all_blocks, doc_files, golden_body, golden_frame, repo};
use tapsign_tests::{World, tapsign_bin};

/// Blocks of these languages are examples someone would run: each runs here or says why not.
const RUNNABLE: &[&str] = &["console", "sh", "bash", "python", "js"];

#[test]
fn every_example_runs_or_says_why_it_cannot() {
    let mut problems = Vec::new();
    let mut skipped = Vec::new();
    for b in all_blocks() {
        if b.lang.is_empty() {
            problems.push(format!(
                "{}: say what the block is (```text for output or a diagram)",
                b.at()
            ));
        }
        if let Some(why) = b.skip_reason() {
            if why.is_empty() {
                problems.push(format!("{}: a skip needs its reason", b.at()));
            }
            skipped.push(format!("{} ({}): {why}", b.at(), b.lang));
            continue;
        }
        let run_elsewhere = b
            .marker
            .as_deref()
            .and_then(|m| m.strip_prefix("doctest: run by "));
        if let Some(by) = run_elsewhere {
            // The test named must exist and name this file, so the claim cannot go stale.
            let test = std::fs::read_to_string(repo().join(by.trim())).unwrap_or_default();
            let doc = b.file.to_string_lossy();
            if !test.contains(doc.as_ref()) {
                problems.push(format!("{}: {by} does not mention {doc}", b.at()));
            }
            continue;
        }
        if RUNNABLE.contains(&b.lang.as_str()) && b.lang != "console" {
            problems.push(format!(
                "{}: a {} example that nothing runs: make it a ```console transcript, or mark it <!-- doctest: skip: WHY -->",
                b.at(),
                b.lang
            ));
        }
    }
    eprintln!("examples skipped, with their reasons ({}):", skipped.len());
    for s in &skipped {
        eprintln!("  SKIPPED {s}");
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn console_transcripts_print_what_they_show() {
    let bin = tapsign_bin();
    let mut failures = Vec::new();
    let mut commands = 0;
    for file in doc_files() {
        let text = std::fs::read_to_string(repo().join(&file)).unwrap();
        let mut sandbox: Option<Sandbox> = None;
        for b in markdown::blocks(&file, &text) {
            if b.lang != "console" || b.skip_reason().is_some() {
                continue;
            }
            if b.fresh() || sandbox.is_none() {
                sandbox = Some(Sandbox::new(&bin));
            }
            let sb = sandbox.as_mut().unwrap();
            if let Err(e) = sb.add_keys(&b.keys()) {
                failures.push(format!("{}: {e}", b.at()));
                continue;
            }
            let steps = match transcript::parse(&b.body) {
                Ok(s) => s,
                Err(e) => {
                    failures.push(format!("{}: {e}", b.at()));
                    continue;
                }
            };
            for step in steps {
                commands += 1;
                if let Err(e) = sb.run(&step) {
                    let line = b.line + step.line;
                    failures.push(format!("{}:{line}: {e}", b.file.display()));
                    break; // the rest of the block depends on this step
                }
            }
        }
    }
    eprintln!("ran {commands} documented commands");
    assert!(commands > 0, "no console transcript found");
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// `tapsign ...` as a command line (after any `VAR=value` words), or None.
fn tapsign_args(words: &[String]) -> Option<Vec<String>> {
    let start = words
        .iter()
        .position(|w| !w.contains('=') || w.starts_with('-'))?;
    (words.get(start)? == "tapsign").then(|| words[start..].to_vec())
}

/// Whether a code span in the text is a synopsis (`tapsign unlock [NAME...] --ttl D`, a choice
/// `a|b`) rather than a command one could type. Placeholders are upper-case words; HTTP
/// methods are values.
fn is_synopsis(span: &str) -> bool {
    let placeholder = |w: &str| {
        w.chars().any(|c| c.is_ascii_uppercase())
            && w.chars().all(|c| c.is_ascii_uppercase() || c == ':')
            && !["GET", "POST", "PUT", "DELETE", "PATCH"].contains(&w)
    };
    ["[", "...", "…", "|"].iter().any(|p| span.contains(p))
        || span.split_whitespace().any(placeholder)
}

#[test]
fn every_tapsign_command_in_the_docs_parses() {
    let mut checked = 0;
    let mut problems = Vec::new();
    // `in_text`: a span in a sentence may name a command without its arguments (`tapsign key
    // add`, `tapsign audit verify --head`); what it names must still exist.
    let mut check = |at: String, line: &str, in_text: bool| {
        use clap::error::ErrorKind;
        let Some(words) = markdown::shell_words(line) else {
            return;
        };
        let Some(args) = tapsign_args(&words) else {
            return;
        };
        checked += 1;
        let named_only = |k: ErrorKind| {
            in_text
                && matches!(
                    k,
                    ErrorKind::MissingRequiredArgument | ErrorKind::InvalidValue
                )
        };
        let result = tapsign_cli::args::Cli::try_parse_from(&args);
        if let Err(e) = result
            && !matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
            && !named_only(e.kind())
        {
            let e = e.to_string();
            let first = e.lines().next().unwrap_or_default().to_owned();
            problems.push(format!("{at}: `{}`: {first}", args.join(" ")));
        }
    };
    for b in all_blocks() {
        let lines: Vec<String> = match b.lang.as_str() {
            "console" => transcript::parse(&b.body)
                .map(|s| s.into_iter().map(|s| s.command).collect())
                .unwrap_or_default(),
            "sh" | "bash" | "text" | "" => b
                .body
                .replace("\\\n", " ")
                .lines()
                .map(str::to_owned)
                .collect(),
            _ => continue,
        };
        for line in lines {
            check(b.at(), &line.replace("\\\n", " "), false);
        }
    }
    for file in doc_files() {
        let text = std::fs::read_to_string(repo().join(&file)).unwrap();
        for (n, span) in markdown::code_spans(&text) {
            if span.starts_with("tapsign ") && !is_synopsis(&span) {
                check(format!("{}:{n}", file.display()), &span, true);
            }
        }
    }
    eprintln!("parsed {checked} tapsign command lines");
    assert!(checked > 50, "only {checked} command lines found");
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

fn protocol_blocks() -> Vec<Block> {
    all_blocks()
        .into_iter()
        .filter(|b| b.file.ends_with("protocol.md"))
        .collect()
}

/// docs/protocol.md's examples are the golden frames (proto/tests/golden.rs keeps those true
/// to the encoder).
#[test]
fn protocol_examples_are_the_golden_frames() {
    let mut problems = Vec::new();
    let mut compared = 0;
    for b in protocol_blocks() {
        if let Some(hex) = b
            .marker
            .as_deref()
            .and_then(|m| m.strip_prefix("golden-hex:"))
        {
            let want = golden_frame(hex.trim());
            let first = b.body.lines().next().unwrap_or_default();
            let got: Vec<u8> = first
                .split_whitespace()
                .map(|h| u8::from_str_radix(h, 16).unwrap())
                .collect();
            compared += 1;
            if got != want {
                problems.push(format!("{}: the hex is not {hex}", b.at()));
            }
            continue;
        }
        if b.lang != "json" {
            continue;
        }
        let Some(names) = b.goldens() else {
            problems.push(format!(
                "{}: a protocol example without its golden frame: <!-- golden: NAME -->",
                b.at()
            ));
            continue;
        };
        let lines: Vec<&str> = b.body.lines().collect();
        if lines.len() != names.len() {
            problems.push(format!(
                "{}: {} lines but {} golden names",
                b.at(),
                lines.len(),
                names.len()
            ));
            continue;
        }
        for (line, name) in lines.iter().zip(names) {
            compared += 1;
            let want = golden_body(name);
            if line.as_bytes() != want.as_slice() {
                problems.push(format!(
                    "{}: not the golden {name}\n  doc:    {line}\n  golden: {}",
                    b.at(),
                    String::from_utf8_lossy(&want)
                ));
            }
        }
    }
    assert!(compared >= 20, "only {compared} examples compared");
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// JSON protocol messages in the other docs decode as the agent decodes them (strictly).
#[test]
fn protocol_messages_elsewhere_decode_strictly() {
    use tapsign_proto::frame::decode_body;
    use tapsign_proto::{Request, Response};
    let mut decoded = 0;
    for b in all_blocks() {
        if b.lang != "json" || b.file.ends_with("protocol.md") || b.skip_reason().is_some() {
            continue;
        }
        let values = serde_json::Deserializer::from_str(&b.body).into_iter::<serde_json::Value>();
        for v in values {
            let v = v.unwrap_or_else(|e| panic!("{}: not JSON: {e}", b.at()));
            if v.get("type").is_none() {
                continue; // a file format (docs/keystore-format.md), not a message
            }
            let bytes = serde_json::to_vec(&v).unwrap();
            let ok =
                decode_body::<Request>(&bytes).is_ok() || decode_body::<Response>(&bytes).is_ok();
            assert!(ok, "{}: the agent would refuse {v}", b.at());
            decoded += 1;
        }
    }
    assert!(decoded >= 3, "only {decoded} messages decoded");
}

/// Read one frame from `s`.
fn read_frame(s: &mut UnixStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    [len.to_vec(), body].concat()
}

/// The golden frames the agent itself produces are what a real agent sends.
#[test]
fn golden_frames_are_what_the_agent_says() {
    let mut w = World::new();
    w.setup_key(
        "binance-spot",
        "binance",
        "test-access-key",
        "test-secret-key",
    );
    w.start_agent();
    let mut s = UnixStream::connect(&w.sock).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut ask = |request: &str| {
        s.write_all(&golden_frame(request)).unwrap();
        read_frame(&mut s)
    };
    let said = |got: Vec<u8>, golden: &str| {
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&golden_frame(golden)),
            "the agent's answer is not {golden}"
        );
    };
    said(ask("request_hello"), "response_hello");
    said(
        ask("request_sign_get_query"),
        "response_error_sign_while_locked",
    );
    said(ask("request_lock"), "response_locked");
    assert_eq!(
        golden_body("response_hello"),
        format!(
            r#"{{"type":"hello","version":1,"agent":"{}"}}"#,
            tapsign_agent::agent::agent_version()
        )
        .into_bytes()
    );
}

/// `response_signed_headers` is what the agent's Binance scheme makes of
/// `request_sign_get_query` at the golden's time, with the golden's key.
#[test]
fn the_golden_signature_is_the_agents() {
    use tapsign_agent::credential::{Credential, Exchange};
    use tapsign_agent::secret::{SecretBytes, SecretString};
    use tapsign_agent::sign::{SignOptions, Stamp, sign};
    use tapsign_proto::frame::decode_body;
    let cred = Credential {
        name: "binance-spot".into(),
        exchange: Exchange::Binance,
        api_key: SecretString::new("test-access-key".into()),
        secret: SecretBytes::from_slice(b"test-secret-key"),
        passphrase: None,
    };
    let tapsign_proto::Request::Sign(req) =
        decode_body(&golden_body("request_sign_get_query")).unwrap()
    else {
        panic!("request_sign_get_query is not a sign request");
    };
    let stamp = Stamp {
        unix_ms: 1_795_600_000_000,
        nonce: [0; 16],
        counter: None,
        session_ends_ms: None,
    };
    let signed = sign(&cred, &req, &stamp, &SignOptions::default()).unwrap();
    let want: tapsign_proto::Response =
        decode_body(&golden_body("response_signed_headers")).unwrap();
    assert_eq!(tapsign_proto::Response::Signed(signed), want);
}

/// config.toml snippets load as the agent loads them, each entry in force, and
/// docs/defaults.md's (marked
/// `doctest: defaults`) is exactly the built-in defaults.
#[test]
fn config_snippets_load_and_the_documented_defaults_are_the_defaults() {
    use std::os::unix::fs::PermissionsExt;
    use tapsign_agent::config::Config;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = dir.path().join("config.toml");
    let mut loaded = 0;
    let mut defaults = 0;
    for b in all_blocks() {
        if b.lang != "toml" || b.skip_reason().is_some() {
            continue;
        }
        std::fs::write(&path, &b.body).unwrap();
        let config = Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", b.at()));
        loaded += 1;
        // Each entry a snippet shows is in force: an `allow` entry its key's `only` leaves out
        // signs nothing, and the example of policy.md and defaults.md showed one (red-team
        // round 24).
        for (key, p) in &config.keys {
            for e in p.allow.iter().filter(|_| !p.only.is_empty()) {
                assert!(
                    p.only
                        .iter()
                        .any(|(m, path)| *m == e.method && *path == e.path),
                    "{}: [keys.{key}]'s allow entry {e} is left out by its only list",
                    b.at()
                );
            }
        }
        if b.marker.as_deref() == Some("doctest: defaults") {
            defaults += 1;
            assert_eq!(config, Config::default(), "{}: not the defaults", b.at());
        }
    }
    assert!(loaded >= 3, "only {loaded} config snippets");
    assert_eq!(
        defaults, 1,
        "docs/defaults.md marks its defaults block once"
    );
}

/// docs/exchanges.md's Python `send()` must send the query as the agent returned it: Upbit
/// hashes `states[]`, not `states%5B%5D` (an HTTP library that re-encodes it breaks the
/// signature). It runs against a local server that records the request line, with what the
/// Python client's `Agent().sign` returns from a running agent, as the example's comment has
/// the trader call it: the example indexed a dict, and the client returns a `SignedRequest`
/// (red-team round 26, F8; the test used to hand it dicts of its own).
#[test]
fn the_python_send_in_exchanges_md_sends_the_bytes_unchanged() {
    let doc = std::fs::read_to_string(repo().join("docs/exchanges.md")).unwrap();
    let block = markdown::blocks(std::path::Path::new("docs/exchanges.md"), &doc)
        .into_iter()
        .find(|b| b.lang == "python" && b.body.contains("def send("))
        .expect("the send() example");
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("TAPSIGN_VYK_REQUIRE").is_none(),
            "python3 is needed to run docs/exchanges.md's example"
        );
        eprintln!("SKIPPED: python3 is not installed: docs/exchanges.md's send() was not run");
        return;
    }
    let mut w = World::new();
    w.setup_key("upbit-main", "upbit", "ak", "sk");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    let harness = include_str!("docs_support/send_check.py");
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!("{}\n{harness}", block.body))
        .env("PYTHONPATH", repo().join("clients/python/src"))
        .env("TAPSIGN_SOCK", w.home().join("run").join("agent.sock"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("GET /v1/orders/open?market=KRW-BTC&states[]=wait&states[]=watch HTTP/1.1"),
        "{stdout}"
    );
    assert!(stdout.contains("POST /v1/orders HTTP/1.1"), "{stdout}");
    assert!(
        stdout.contains(
            r#"body {"market":"KRW-BTC","side":"bid","ord_type":"price","price":"10000"}"#
        ),
        "{stdout}"
    );
}

/// docs/audit.md's "printed as" column is what `tapsign audit` prints, for the lines a session
/// writes: numbers, hashes and program paths aside, the same words. The `agent_start` line
/// had lost a word of it (red-team round 24, A1).
#[test]
fn the_audit_lines_printed_are_as_audit_md_shows_them() {
    // Runs of digits are N, of 16 hex digits or more H, a parenthesised path (P).
    fn shape(line: &str) -> String {
        let mut out = String::new();
        let mut rest = line;
        while let Some(c) = rest.chars().next() {
            if let Some(path) = rest.strip_prefix("(/") {
                let end = path.find(')').map_or(path.len(), |i| i + 1);
                out.push_str("(P)");
                rest = &path[end..];
                continue;
            }
            let hex = rest.chars().take_while(char::is_ascii_hexdigit).count();
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            let (word, n) = match (hex >= 16, digits) {
                (true, _) => ("H", hex),
                (false, 0) => ("", c.len_utf8()),
                (false, d) => ("N", d),
            };
            out.push_str(if word.is_empty() { &rest[..n] } else { word });
            rest = &rest[n..];
        }
        out
    }
    let doc = std::fs::read_to_string(repo().join("docs/audit.md")).unwrap();
    let mut w = World::new();
    w.setup_key("upbit-main", "upbit", "ak", "sk");
    w.start_agent();
    w.run(&["unlock"], "").ok();
    w.run(
        &[
            "sign",
            "upbit-main",
            "--method",
            "GET",
            "--path",
            "/v1/accounts",
        ],
        "",
    )
    .ok();
    w.signal_agent("TERM");
    let printed: Vec<String> = (w.run(&["audit"], "").ok().lines())
        .map(|l| shape(l.split_once(' ').map_or(l, |(_, rest)| rest)))
        .collect();
    let mut checked = Vec::new();
    for ty in ["agent_start", "agent_stop", "keystore", "sign"] {
        let row = (doc.lines())
            .find(|l| l.starts_with(&format!("| `{ty}` |")))
            .unwrap_or_else(|| panic!("audit.md has no row for {ty}"));
        let shown = row.rsplit(" | ").next().unwrap();
        let example = shown.split('`').nth(1).unwrap();
        assert!(
            printed.contains(&shape(example)),
            "audit.md prints {ty} as `{example}`, but `tapsign audit` printed:\n{}",
            printed.join("\n")
        );
        checked.push(ty);
    }
    assert_eq!(checked.len(), 4);
}

/// Red-team round 25: the threat model's list of how long each websocket login lives left out
/// Kraken's token (15 minutes from issue) and Bitget's login made of a REST signature. Every
/// exchange whose login the agent signs, or whose REST signature it takes for one, is named.
#[test]
fn the_threat_model_says_how_long_every_websocket_login_lives() {
    use tapsign_agent::credential::Exchange;
    let text = std::fs::read_to_string(repo().join("docs/threat-model.md")).unwrap();
    let start = text.find("- Websocket logins are the same").unwrap();
    let end = text[start + 1..]
        .find("\n- ")
        .map_or(text.len(), |i| start + 1 + i);
    let bullet = text[start..end].to_lowercase();
    // The REST signatures the wall reads as logins (policy.md, "Websocket logins").
    let by_rest = [
        Exchange::Binance,
        Exchange::Bitget,
        Exchange::Okx,
        Exchange::Kraken,
    ];
    for &ex in Exchange::ALL {
        if tapsign_agent::sign::signs_websocket_login(ex) || by_rest.contains(&ex) {
            let name = ex.to_string().to_lowercase();
            assert!(bullet.contains(&name), "{name} is not in: {bullet}");
        }
    }
}

/// Red-team round 26: the threat model read as if local malware got nothing from a YubiKey
/// with touch always, and "Delete things" did not name the token. It says that the card gives
/// the touch to whichever command waits (and with PIN policy never, to any program), that a
/// program running as you can destroy the key, and to keep a second token and change the
/// management key; the delete bullet names the token.
#[test]
fn the_threat_model_says_what_a_program_talking_to_the_yubikey_can_do() {
    let text = std::fs::read_to_string(repo().join("docs/threat-model.md")).unwrap();
    let start = text
        .find("- **Malware running as you that talks to the YubiKey.**")
        .unwrap();
    let end = text[start + 1..]
        .find("\n- **")
        .map_or(text.len(), |i| start + 1 + i);
    let bullet = text[start..end]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for said in [
        "The touch goes to whichever command is waiting",
        "With PIN policy never, any program running as you",
        "It can destroy the key",
        "reset the PIV applet",
        "Keep a second token enrolled and unplugged",
        "ykman piv access change-management-key --generate",
        "refuses an imported key",
    ] {
        assert!(bullet.contains(said), "{said:?} is not in: {bullet}");
    }
    let start = text.find("- **Delete things.**").unwrap();
    let end = text[start + 1..].find("\n- **").unwrap() + start + 1;
    let delete = text[start..end]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        delete.contains("wipe or replace the YubiKey's PIV key")
            && delete.contains("Keep a second token enrolled and unplugged"),
        "{delete}"
    );
}
