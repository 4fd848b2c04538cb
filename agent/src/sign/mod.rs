//! Signing schemes: pure functions of (credential, request, stamp).
//!
//! The agent stamps time and nonces itself ([`Stamp`]) so a bot cannot collect signatures
//! dated in the future. A scheme never re-serializes what the bot sent: it hashes and signs the
//! bytes as given and appends its own parameters in the order the exchange signs them.
//!
//! One module per scheme (docs/exchanges.md; sources: docs/sources.md): [`upbit`] and [`bithumb`] (HMAC JWTs),
//! [`binance`] (HMAC or Ed25519 over query+body), [`bybit`], [`okx`], [`kucoin`], [`bitget`]
//! and [`gate`] (HMAC over a string with the agent's timestamp, sent in headers), [`kraken`]
//! (HMAC-SHA512 over a nested hash, with a persistent nonce), [`coinbase`] (ES256/EdDSA JWTs).
//! [`keys`] reads asymmetric keys and holds the `key add` check. A [`SignKind::WsLogin`]
//! request makes a websocket login message instead ([`sign`] dispatches both).

pub mod binance;
pub mod bitget;
pub mod bithumb;
pub mod bybit;
pub mod coinbase;
pub(crate) mod common;
pub(crate) mod form;
pub mod gate;
pub mod keys;
pub mod kraken;
pub mod kucoin;
pub mod okx;
pub mod upbit;

use tapsign_proto::{SignKind, SignRequest, SignedRequest};

use crate::credential::{Credential, Exchange};

/// Agent-supplied freshness: the wall-clock time and a random nonce. Tests inject both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// 16 random bytes (Upbit's UUID v4 nonce is made from them).
    pub nonce: [u8; 16],
    /// A strictly increasing counter that survives restarts, for exchanges whose nonce must
    /// grow (Kraken). The agent takes it from [`crate::nonces::KrakenNonces`] for Kraken keys;
    /// `None` elsewhere. A Kraken request without one is refused, never signed with a guess.
    pub counter: Option<u64>,
    /// When the open session ends, in milliseconds since the Unix epoch: its lifetime's end or,
    /// when nearer, its idle end counted from this signature. A scheme whose signature carries
    /// an expiry of the agent's choosing (Coinbase's `exp`) ends it no later. `None` where no
    /// session bounds the signature (`policy explain`, tests).
    pub session_ends_ms: Option<u64>,
}

impl Stamp {
    /// Now, with a fresh random nonce.
    pub fn now() -> Result<Self, SignError> {
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| SignError::Clock)?
            .as_millis() as u64;
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|_| SignError::Clock)?;
        Ok(Stamp {
            unix_ms,
            nonce,
            counter: None,
            session_ends_ms: None,
        })
    }
}

/// Agent-wide signing options (from the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignOptions {
    /// How far a bot-supplied timestamp may be from the agent's clock.
    pub max_skew_ms: u64,
    /// The largest `recvWindow` the agent lets a Binance request carry.
    pub recv_window_cap_ms: u64,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions {
            max_skew_ms: 5_000,
            recv_window_cap_ms: 5_000,
        }
    }
}

/// Why a request could not be signed. Messages never contain secret material.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    /// The request does not make sense for this exchange.
    #[error("{0}")]
    BadRequest(String),
    /// A bot-supplied timestamp is too far from the agent's clock.
    #[error(
        "the request carries {param}={value}, {skew_ms} ms from the agent's clock (limit {limit_ms} ms); leave {param} out and the agent stamps it"
    )]
    StaleTimestamp {
        param: &'static str,
        value: String,
        skew_ms: u64,
        limit_ms: u64,
    },
    /// The stored credential cannot be used by this scheme.
    #[error("the credential cannot sign for this exchange: {0}")]
    BadCredential(String),
    /// The system clock or random source failed.
    #[error("the system clock or random source is unavailable")]
    Clock,
}

/// Sign `req` with `cred`, as `cred`'s exchange wants it.
pub fn sign(
    cred: &Credential,
    req: &SignRequest,
    stamp: &Stamp,
    opts: &SignOptions,
) -> Result<SignedRequest, SignError> {
    check_common(req)?;
    if req.kind == SignKind::WsLogin {
        return ws_login(cred, req, stamp, opts);
    }
    match cred.exchange {
        Exchange::Upbit => upbit::sign(cred, req, stamp, opts),
        Exchange::Binance => binance::sign(cred, req, stamp, opts),
        Exchange::Bithumb => bithumb::sign(cred, req, stamp, opts),
        Exchange::Bybit => bybit::sign(cred, req, stamp, opts),
        Exchange::Okx => okx::sign(cred, req, stamp, opts),
        Exchange::Coinbase => coinbase::sign(cred, req, stamp, opts),
        Exchange::Kraken => kraken::sign(cred, req, stamp, opts),
        Exchange::Gate => gate::sign(cred, req, stamp, opts),
        Exchange::Kucoin => kucoin::sign(cred, req, stamp, opts),
        Exchange::Bitget => bitget::sign(cred, req, stamp, opts),
    }
}

/// A websocket login message. The bot sends `kind: "ws_login"`, method `GET`, the websocket
/// path, and no query or body; the answer's `body` is the JSON message to send on the socket
/// (add an `id`/`req_id` of your own if you want one). Only exchanges whose websocket login is
/// signed with the API secret have one; the others log in with a token from a signed REST call.
fn ws_login(
    cred: &Credential,
    req: &SignRequest,
    stamp: &Stamp,
    opts: &SignOptions,
) -> Result<SignedRequest, SignError> {
    if req.method != "GET"
        || !req.path.starts_with('/')
        || !req.query.is_empty()
        || !req.body.is_empty()
    {
        return Err(SignError::BadRequest(
            "a ws_login request has method \"GET\", the websocket path (e.g. \"/ws-api/v3\") \
             and no query or body"
                .into(),
        ));
    }
    let message = match cred.exchange {
        Exchange::Binance => binance::ws_logon(cred, stamp, opts)?,
        Exchange::Bybit => bybit::ws_auth(cred, stamp, opts)?,
        Exchange::Okx => okx::ws_login(cred, stamp)?,
        Exchange::Coinbase => coinbase::ws_jwt(cred, stamp)?,
        other => {
            return Err(SignError::BadRequest(no_websocket_login(other)));
        }
    };
    Ok(SignedRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        query: String::new(),
        body: message,
        headers: Default::default(),
    })
}

/// What a websocket login of `exchange` signs, as the audit log records it in place of the
/// request's method and path: the method and path the login's signature covers where it covers
/// one (Bybit's `GET/realtime`, OKX's `GET/users/self/verify`, fixed by the agent), else, with
/// no method, the login's own name (Binance's `session.logon` signs the API key and a
/// timestamp; Coinbase's JWT has no `uri` claim). Never the path the bot sent: no login signs
/// it, so it tells nothing about what the signature can do.
pub fn ws_login_signs(exchange: Exchange) -> (&'static str, &'static str) {
    match exchange {
        Exchange::Bybit => bybit::WS_SIGNED,
        Exchange::Okx => okx::WS_SIGNED,
        Exchange::Binance => ("", "session.logon"),
        Exchange::Coinbase => ("", "jwt without uri"),
        // Refused by `ws_login`: never signed, never logged as signed.
        _ => ("", "?"),
    }
}

/// How the private websocket of an exchange without a signed login message authenticates,
/// for the refusal of a `ws_login` request (docs/exchanges.md says the same per exchange).
/// Whether the agent signs `exchange`'s websocket login (a `ws_login` request).
pub fn signs_websocket_login(exchange: Exchange) -> bool {
    matches!(
        exchange,
        Exchange::Binance | Exchange::Bybit | Exchange::Okx | Exchange::Coinbase
    )
}

/// Why `cred` can make no websocket login the agent signs for its exchange, if that depends on
/// the key itself (Binance's `session.logon` takes Ed25519 keys only): said before the key's
/// `ws_login` switch is looked at.
pub fn login_refused(cred: &Credential) -> Option<SignError> {
    match cred.exchange {
        Exchange::Binance => binance::logon_refused(cred),
        _ => None,
    }
}

/// Why a `ws_login` request for `exchange`, whose login the agent does not sign, is refused,
/// and how its websocket logs in instead.
pub fn no_websocket_login(exchange: Exchange) -> String {
    format!(
        "{exchange} has no websocket login the agent signs: {} (docs/exchanges.md)",
        how_websocket_logs_in(exchange)
    )
}

fn how_websocket_logs_in(exchange: Exchange) -> &'static str {
    match exchange {
        Exchange::Upbit | Exchange::Bithumb => {
            "its private websocket takes the JWT of a parameterless REST request in the \
             handshake: sign a parameterless GET of the profile, such as GET /v1/accounts, as an \
             ordinary request and send its token"
        }
        Exchange::Kraken => {
            "its private websocket takes a token from POST /0/private/GetWebSocketsToken, an \
             ordinary REST request the agent signs for a key with ws_login = true (it counts as \
             a websocket login)"
        }
        Exchange::Kucoin => {
            "its private websocket takes a token from POST /api/v1/bullet-private (a unified \
             account's from POST /api/v2/bullet-private), an ordinary signed REST call"
        }
        Exchange::Gate => {
            "Gate signs each private channel subscription (channel, event and time) with the \
             API secret, which the agent does not offer yet"
        }
        Exchange::Bitget => {
            "Bitget's websocket login is not offered yet (its SDKs disagree on the timestamp \
             unit)"
        }
        Exchange::Binance | Exchange::Bybit | Exchange::Okx | Exchange::Coinbase => {
            // Not reached: these sign a login message above.
            "see its section"
        }
    }
}

/// Checks every scheme shares: a known method, a path that starts with `/`, no control bytes.
fn check_common(req: &SignRequest) -> Result<(), SignError> {
    if !matches!(
        req.method.as_str(),
        "GET" | "POST" | "PUT" | "DELETE" | "PATCH"
    ) {
        return Err(SignError::BadRequest(format!(
            "method {:?} is not one of GET, POST, PUT, DELETE, PATCH (upper case)",
            req.method
        )));
    }
    if !req.path.starts_with('/') || req.path.contains(['?', '#']) {
        return Err(SignError::BadRequest(
            "path must start with '/' and carry no query or fragment (put the query in \"query\")"
                .into(),
        ));
    }
    let has_ctl = |s: &str| s.chars().any(|c| c.is_control());
    if has_ctl(&req.path) || has_ctl(&req.query) {
        return Err(SignError::BadRequest(
            "path and query must not contain control characters".into(),
        ));
    }
    if req.query.starts_with('?') {
        return Err(SignError::BadRequest(
            "query must not start with '?'".into(),
        ));
    }
    Ok(())
}
