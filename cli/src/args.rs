//! The command line, as clap parses it.

use clap::{Args, Parser, Subcommand};

pub const AFTER_HELP: &str = "\
Getting started:
  tapsign agent &                                   # run the agent (foreground; logs to stderr)
  tapsign token add --piv                           # enroll a token (a YubiKey; or --fido2)
  tapsign key add upbit-main --exchange upbit       # store a credential (no-echo prompt)
  tapsign unlock --ttl 8h --max-signatures 5000     # touch the token: a session opens
  tapsign sign upbit-main --method GET --path /v1/accounts
  tapsign policy explain upbit-main --method GET --path /v1/accounts
  tapsign lock                                      # end the session (wire it to screen lock)

Files: TAPSIGN_HOME puts everything in one folder; otherwise the XDG folders.
Socket: TAPSIGN_SOCK, else $XDG_RUNTIME_DIR/tapsign/agent.sock (docs/cli.md: fallbacks).
Exit codes: 0 ok, 1 error, 2 usage, 3 no agent, 4 locked/expired/budget spent,
5 refused (policy, bad request, unknown key), 6 token problem, 7 keystore or audit
log problem (damaged, missing, or refused by its checks: docs/cli.md).";

/// Keep exchange API secrets behind a hardware token and sign requests for trading bots.
///
/// The secret is stored only encrypted to a token (a YubiKey, or any FIDO2 key with
/// hmac-secret). A touch opens a signing
/// session bounded in time, idle time and number of signatures; bots ask the agent for
/// signatures and never see the secret. Withdrawal, transfer and key-management endpoints
/// are never signed.
#[derive(Debug, Parser)]
#[command(name = "tapsign", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent in the foreground (logs to stderr; SIGTERM wipes the session and exits).
    Agent,
    /// Enroll, list and remove tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Add, list and remove exchange credentials.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Open a signing session: asks the token for a touch, and says what that touch opens. An
    /// open session is replaced (it ends as a lock ends it: bots get `locked`; keys not named
    /// drop out); --extend renews it instead. Refused (busy) while another unlock waits for its
    /// touch: do not touch for it then.
    ///
    /// The token is found first (a YubiKey, then a FIDO2 key, then the soft token; or the one
    /// --token names), without a PIN or a touch; then, if it takes a PIN, its PIN is read
    /// (no echo, or the first line of stdin), with a prompt naming it. The PIN goes to that
    /// token alone.
    Unlock(UnlockArgs),
    /// Sign a request and print the request to send, as one JSON object.
    Sign(SignArgs),
    /// Show whether a session is open, how long it has and how many signatures are left.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// End the session now: the secrets are wiped from the agent's memory. Exits 3 when no
    /// agent runs.
    Lock,
    /// Print session events (opened, extended, ending soon, budget low, locked) as JSON
    /// lines until interrupted.
    Events,
    /// Show how the agent reads a request and which rule allows or refuses it.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Print the audit log, or check its hash chain.
    Audit {
        #[command(subcommand)]
        action: Option<AuditCommand>,
    },
    /// Work on the keystore as a whole.
    #[command(subcommand)]
    Keystore(KeystoreCommand),
    /// Print a shell completion script (scripts/install puts it where your shell looks).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the manual page tapsign(1) as roff, or write one page per command into a folder.
    Man {
        /// Write tapsign.1 and a tapsign-COMMAND.1 page per command into this folder.
        #[arg(long, value_name = "FOLDER")]
        dir: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeystoreCommand {
    /// Give the keystore a new vault key: every credential is re-sealed to it and every
    /// enrolled token receives it (after a touch on one of them). A copy of the keystore made
    /// before then opens nothing current, with any token.
    ///
    /// PINs are read with no echo, or one per line from stdin when it is not a terminal, in
    /// this order: the PIN of the token touched to open the keystore, when it needs one (the
    /// prompt names that one token, --token's or the first present: the PIN goes to it
    /// alone); then that of each FIDO2 key that asks for its PIN to receive the new vault
    /// key, as each prompt names it (the touched key's again, when it is one).
    Rotate {
        /// manifest.json is lost, damaged or does not verify: rotate anyway, carrying every
        /// credential that opens as it is now, but for a file the audit log's record of key
        /// changes shows to be an old copy, a removed credential put back, or not the version
        /// recorded (the rebuild then stops and names it). Only the token touched receives the
        /// new vault key: enroll the others again.
        #[arg(long)]
        rebuild_manifest: bool,
        /// With --rebuild-manifest, where the audit log cannot vouch for the files (lost for
        /// good, or an older tapsign's, with no keystore line signed by the vault key): take
        /// them unchecked. Use it only on files you trust.
        #[arg(long, requires = "rebuild_manifest")]
        unchecked: bool,
        /// Leave out the credential files the check refuses (old copies or removed ones put
        /// back, files that do not open), deleting them with the old vault folder; without
        /// it, such files stop the rotation and nothing changes.
        #[arg(long, conflicts_with = "rebuild_manifest")]
        drop_refused: bool,
        /// The enrolled token to open the keystore with, by the id `tapsign token list`
        /// shows. Default: the first one present, a YubiKey (PIV), then a FIDO2 key, then the
        /// soft token. Only that token is asked for its PIN and touch.
        #[arg(long, value_name = "ID")]
        token: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Enroll a token. The first token enrolled creates the keystore; enrolling another asks
    /// for a touch on one already enrolled.
    ///
    /// PINs are read with no echo, or one per line from stdin when it is not a terminal, in
    /// this order: the PIN of the enrolled token that opens the keystore, when it needs one
    /// (the prompt names that one token, --token's or the first present: the PIN goes to it
    /// alone), then the new token's.
    ///
    /// --piv generates a P-256 key in a retired slot of a YubiKey (touch policy always: a
    /// touch for every unlock) and asks for its PIN. A card with the factory management key
    /// gets a random one, stored on the card behind the PIN (unless --keep-default-mgm-key);
    /// a key found stored there is replaced by a new random one the same way (storing one
    /// takes no PIN); with --custom-mgm-key the management key (hex) is read after the PIN.
    ///
    /// --fido2 makes a credential with hmac-secret on a FIDO2 key (USB or NFC reader) and
    /// asks for two touches on it, and for its FIDO2 PIN when it has one and --uv is required
    /// (or the key demands it to make a credential).
    Add(TokenAddArgs),
    /// List the enrolled tokens.
    List,
    /// Remove a token (by the id `token list` shows) and revoke it: the keystore gets a new
    /// vault key, re-seals every credential to it and gives it to the tokens that stay (after
    /// a touch on one of them), so the removed token, even with an old copy of its keyslot,
    /// opens nothing current. The last token cannot be removed.
    ///
    /// PINs are read as `keystore rotate` reads them: the touched token's, then that of each
    /// FIDO2 key that asks for its PIN to receive the new vault key, one per line on stdin.
    ///
    /// Credential files the check refuses stop it, changing nothing, unless --drop-refused.
    Remove {
        /// The token's id, as `tapsign token list` shows it.
        id: String,
        /// Leave out the credential files the check refuses (old copies or removed ones put
        /// back, files that do not open), deleting them with the old vault folder.
        #[arg(long)]
        drop_refused: bool,
        /// The enrolled token to open the keystore with, by the id `tapsign token list`
        /// shows. Default: the first one present, a YubiKey (PIV), then a FIDO2 key, then the
        /// soft token. Only that token is asked for its PIN and touch.
        #[arg(long, value_name = "ID")]
        token: Option<String>,
    },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["piv", "fido2", "soft"])))]
pub struct TokenAddArgs {
    /// A YubiKey (PIV, P-256 key on the card).
    #[arg(long)]
    pub piv: bool,
    /// A FIDO2 key with hmac-secret (USB, or a card on an NFC/PC/SC reader).
    #[arg(long)]
    pub fido2: bool,
    /// Which FIDO2 USB key, by hidraw path (needed when several FIDO2 keys are present).
    #[arg(
        long,
        value_name = "HIDPATH",
        requires = "fido2",
        conflicts_with = "reader"
    )]
    pub device: Option<String>,
    /// Which PC/SC reader holds the FIDO2 key (an NFC reader).
    #[arg(long, value_name = "NAME", requires = "fido2")]
    pub reader: Option<String>,
    /// A name for the FIDO2 key, used in prompts (default: its USB product name).
    #[arg(long, value_name = "LABEL", requires = "fido2")]
    pub name: Option<String>,
    /// Ask for the FIDO2 PIN at every unlock (required), or no PIN (discouraged). tapsign
    /// always asks for a touch, but many keys answer without one when another program asks:
    /// with discouraged, any program running as you opens the keystore with no touch and no
    /// PIN while the key is plugged in (threat-model.md). Default: required when the key has
    /// a PIN, else discouraged.
    #[arg(long, value_parser = ["required", "discouraged"], requires = "fido2")]
    pub uv: Option<String>,
    /// The software token: NO SECURITY, for tests only. Needs TAPSIGN_INSECURE_SOFT_TOKEN=1.
    #[arg(long)]
    pub soft: bool,
    /// Which YubiKey, by serial number (needed when several are plugged in).
    #[arg(long, requires = "piv")]
    pub serial: Option<u32>,
    /// The retired PIV slot to use, R1 to R20.
    #[arg(long, default_value = "R1", value_parser = parse_slot, requires = "piv")]
    pub slot: u8,
    /// When the card asks for the PIN: never, once (per card session), always. With never,
    /// any program running as you can take the keystore's key with your touch (the card
    /// answers a touch for whichever program's command is waiting).
    #[arg(long, default_value = "once", value_parser = ["never", "once", "always"], requires = "piv")]
    pub pin_policy: String,
    /// When the card asks for a touch: always (every unlock), the only policy tapsign
    /// generates. Cached is not offered: for 15 s after each touch, any program running as
    /// you could unlock without one.
    #[arg(long, default_value = "always", value_parser = parse_touch_policy, requires = "piv")]
    pub touch_policy: String,
    /// Adopt the P-256 key already in the slot instead of generating one. The card must
    /// prove it holds the key (one ECDH: touch it if its policy wants a touch). A key whose
    /// touch policy is never is refused unless --allow-no-touch, one whose policy is cached
    /// unless --allow-cached-touch, and one the card says was imported (not generated on it)
    /// unless --allow-imported. Adopt only a key you generated on this card yourself: a
    /// program running as you can put a key in an empty slot.
    #[arg(long, requires = "piv")]
    pub use_existing: bool,
    /// With --use-existing: adopt a key whose touch policy is never. Then any program running
    /// as you can unlock while the card is plugged in, without anyone touching it.
    #[arg(long, requires = "use_existing")]
    pub allow_no_touch: bool,
    /// With --use-existing: adopt a key whose touch policy is cached. Then, for 15 s after
    /// each touch on the card, any program running as you can unlock every key for as long
    /// as it asks, or take the keystore's key itself, without anyone touching it again.
    #[arg(long, requires = "use_existing")]
    pub allow_cached_touch: bool,
    /// With --use-existing: adopt a key the card says was imported, or does not say was
    /// generated on it. Dangerous: whoever imported the key holds its private key and can
    /// open the keystore without the card or a touch, and any program running as you can
    /// import one with the factory management key. Only for a key you imported yourself
    /// and whose private key you keep safe.
    #[arg(long, requires = "use_existing")]
    pub allow_imported: bool,
    /// Overwrite a key already in the slot (it is lost for good).
    #[arg(long, requires = "piv", conflicts_with = "use_existing")]
    pub force: bool,
    /// The card's management key is not the factory default, nor stored behind the PIN
    /// (as tapsign and `ykman piv access change-management-key --protect` store it): read it
    /// (hex) after the PIN. It is used as it is, never changed.
    #[arg(long, requires = "piv", conflicts_with = "keep_default_mgm_key")]
    pub custom_mgm_key: bool,
    /// Leave the factory management key in place. By default a card that still has it gets
    /// a random one, stored on the card behind the PIN (where ykman finds it too). Kept, it
    /// lets any program running as you, with no PIN and no touch, generate or import a key
    /// over the enrolled one (the keystore then never opens with this card) or change the
    /// management key and lock you out of enrolling the card again.
    #[arg(long, requires = "piv")]
    pub keep_default_mgm_key: bool,
    /// The enrolled token to open the keystore with, by the id `tapsign token list`
    /// shows. Default: the first one present, a YubiKey (PIV), then a FIDO2 key, then the
    /// soft token. Only that token is asked for its PIN and touch.
    #[arg(long, value_name = "ID")]
    pub token: Option<String>,
}

/// Only `always`. `cached` is refused with the reason, since older docs offered it (red-team
/// round 20: it lets a program running as you ride your touch).
fn parse_touch_policy(s: &str) -> Result<String, String> {
    match s {
        "always" => Ok(s.into()),
        "cached" => Err("cached is not offered: for 15 s after each touch, any program running as you could unlock every key, or take the keystore's key, without a touch. tapsign generates keys with touch always (a key made elsewhere with cached can be adopted with --use-existing --allow-cached-touch)".into()),
        _ => Err(format!("{s:?} is not a touch policy tapsign generates: use always")),
    }
}

fn parse_slot(s: &str) -> Result<u8, String> {
    let n = s.strip_prefix(['R', 'r']).unwrap_or(s);
    match n.parse::<u8>() {
        Ok(n @ 1..=20) => Ok(n),
        _ => Err(format!("{s:?} is not a retired slot: use R1 to R20")),
    }
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Store a credential, sealed so only an unlock can read it (no touch needed).
    ///
    /// The fields (API key, then secret, then any passphrase) are read from a no-echo prompt,
    /// or one per line from stdin when stdin is not a terminal. Never from the command line.
    ///
    /// Create the key on the exchange with trading and read permissions only (no withdrawal,
    /// transfer, sub-account, lending, P2P or key management) and an IP whitelist. tapsign never
    /// signs a fund-moving request, but on exchanges that do not sign the path a signature
    /// a bot collected can reach any endpoint that takes the same parameters, and only the
    /// key's own permissions stop that (docs/threat-model.md). On Kraken, also keep the key's
    /// nonce window at 0, so that Kraken takes each signature once and in order.
    Add {
        /// A name for the credential: 1 to 64 letters, digits, '-', '_', '.', not starting
        /// with '.'.
        name: String,
        /// The exchange it belongs to: upbit, bithumb, binance, bybit, okx, coinbase, kraken,
        /// gate, kucoin or bitget.
        #[arg(long)]
        exchange: String,
        /// Replace an existing credential of that name.
        #[arg(long)]
        replace: bool,
    },
    /// List the stored credentials (names and exchanges only).
    List,
    /// Delete a stored credential.
    Remove {
        /// The credential's name, as `tapsign key list` shows it.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The credentials to open (default: all).
    pub names: Vec<String>,
    /// Absolute lifetime of the session, like 90s, 15m, 8h, 1d (default: config.toml's
    /// session.ttl, 8h unless set; at most session.max_ttl, 24h unless set).
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
    /// End the session after this long without a signature (default:
    /// session.idle, 1h unless set; at most session.max_idle, 8h unless set).
    #[arg(long, value_name = "DURATION")]
    pub idle: Option<String>,
    /// End the session after this many signatures (default:
    /// session.max_signatures, 50000 unless set; at most session.max_signatures_cap, 1000000
    /// unless set).
    #[arg(long, value_name = "N")]
    pub max_signatures: Option<u64>,
    /// Renew the open session with a touch: its lifetime, idle time and budget start again,
    /// as it was opened with unless --ttl, --idle or --max-signatures say otherwise. It keeps
    /// the session's keys, less those removed from the keystore or replaced in it since the
    /// session opened them, which it drops (and says so).
    #[arg(long, conflicts_with = "names")]
    pub extend: bool,
    /// The enrolled token to unlock with, by the id `tapsign token list` shows. Default: the
    /// first one present, a YubiKey (PIV), then a FIDO2 key, then the soft token. The PIN
    /// prompt names that one token, and the PIN goes to it alone (with a YubiKey and a FIDO2
    /// key both plugged in, the YubiKey is used unless --token names the FIDO2 key). A
    /// keyslot the manifest does not record is used only while no recorded one's token is
    /// present.
    #[arg(long, value_name = "ID")]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The credential to sign with.
    pub name: String,
    #[command(flatten)]
    pub request: RequestArgs,
}

/// The request to sign (or explain), exactly as the bot will send it.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// HTTP method (GET, POST, PUT, DELETE, PATCH).
    #[arg(long)]
    pub method: String,
    /// Request path, like /api/v3/order.
    #[arg(long)]
    pub path: String,
    /// Query string exactly as it will be sent, without '?'.
    #[arg(long, default_value = "")]
    pub query: String,
    /// Body exactly as it will be sent.
    #[arg(long, default_value = "")]
    pub body: String,
}

impl RequestArgs {
    /// The protocol's sign request for `key`.
    pub fn into_request(self, key: String) -> tapsign_proto::SignRequest {
        tapsign_proto::SignRequest {
            key,
            method: self.method,
            path: self.path,
            query: self.query,
            body: self.body,
            kind: tapsign_proto::SignKind::Rest,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Parse a request as the agent would, and print it, the rule that allows or refuses it
    /// (an allowing entry also as the config.toml line to copy under the key's `allow` and
    /// edit), and, for exchanges that do not sign the path (Binance, Bybit, Upbit, Bithumb), the
    /// other endpoints the same signature would be valid for. A request the policy allows is
    /// also signed with a made-up stand-in key, to show what the exchange's signing refuses
    /// (not for Coinbase, whose refusals depend on the kind of key). Needs no agent and no
    /// token: it reads config.toml and the key's exchange from the keystore. Exit code 0 when
    /// the request would be signed, 5 when it would be refused.
    ///
    /// Example: tapsign policy explain binance-main --method POST --path /api/v3/order
    ///          --query 'symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01'
    Explain(ExplainArgs),
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The credential (its exchange and its config.toml policy apply).
    pub name: String,
    #[command(flatten)]
    pub request: RequestArgs,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain: finds an edited, inserted or deleted line. With --head, also
    /// that the log still holds the line a head saved elsewhere names (catches a cut-off tail
    /// or a replaced file).
    Verify {
        /// A head as `tapsign status` or `audit verify` printed it: SEQ:HASH.
        #[arg(long, value_name = "SEQ:HASH")]
        head: Option<String>,
    },
}
