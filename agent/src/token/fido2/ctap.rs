//! CTAP2 messages (CTAP 2.1 §6): the requests tapsign sends, built as CBOR, and the answers it
//! reads back, checked. Pure functions; the transports carry the bytes.
//!
//! A request is the command byte followed by a CBOR map with integer keys; an answer is a
//! status byte (0 = success) followed, on success, by a CBOR map.

use super::cbor::{self, Value};
use super::error::Fido2Error;
use super::pin_protocol::Protocol;

pub const MAKE_CREDENTIAL: u8 = 0x01;
pub const GET_ASSERTION: u8 = 0x02;
pub const GET_INFO: u8 = 0x04;
pub const CLIENT_PIN: u8 = 0x06;

/// COSE algorithm ES256 (ECDSA P-256 with SHA-256).
const ES256: i64 = -7;

/// clientPIN subcommands (CTAP 2.1 §6.5.5).
pub mod pin_cmd {
    pub const GET_RETRIES: u8 = 0x01;
    pub const GET_KEY_AGREEMENT: u8 = 0x02;
    /// CTAP 2.0's getPinToken ("getPinUvAuthTokenUsingPin (superseded)" in 2.1).
    pub const GET_PIN_TOKEN: u8 = 0x05;
    pub const GET_TOKEN_WITH_PERMISSIONS: u8 = 0x09;
}

/// pinUvAuthToken permissions (CTAP 2.1 §6.5.5.7).
pub mod permission {
    pub const MAKE_CREDENTIAL: u8 = 0x01;
    pub const GET_ASSERTION: u8 = 0x02;
}

/// Authenticator data flags (WebAuthn §6.1).
pub mod flag {
    pub const UP: u8 = 0x01;
    pub const UV: u8 = 0x04;
    pub const AT: u8 = 0x40;
    pub const ED: u8 = 0x80;
}

/// A request: the command byte, then the CBOR parameters (if any).
pub fn request(command: u8, params: Option<&Value>) -> Vec<u8> {
    let mut out = vec![command];
    if let Some(p) = params {
        out.extend(cbor::encode(p));
    }
    out
}

/// Split an answer into its status and CBOR body. A failure status is [`Fido2Error::Status`].
pub fn response(bytes: &[u8]) -> Result<Value, Fido2Error> {
    let (&status, body) = bytes
        .split_first()
        .ok_or_else(|| Fido2Error::malformed("an empty answer"))?;
    if status != 0 {
        return Err(Fido2Error::Status(status));
    }
    if body.is_empty() {
        return Ok(Value::Map(Vec::new()));
    }
    cbor::decode(body).map_err(|e| Fido2Error::malformed(format!("its answer is not CBOR ({e})")))
}

/// What getInfo says (CTAP 2.1 §6.4), as far as tapsign cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info {
    /// FIDO_2_0, FIDO_2_1_PRE, FIDO_2_1, U2F_V2 ...
    pub versions: Vec<String>,
    pub extensions: Vec<String>,
    pub aaguid: [u8; 16],
    pub options: Vec<(String, bool)>,
    pub pin_protocols: Vec<u64>,
}

impl Info {
    pub fn option(&self, name: &str) -> Option<bool> {
        self.options
            .iter()
            .find_map(|(k, v)| (k == name).then_some(*v))
    }

    /// clientPin: `Some(true)` a PIN is set, `Some(false)` one can be set, `None` no PIN support.
    pub fn client_pin(&self) -> Option<bool> {
        self.option("clientPin")
    }

    pub fn has_extension(&self, name: &str) -> bool {
        self.extensions.iter().any(|e| e == name)
    }

    /// CTAP 2.1's getPinUvAuthTokenUsingPinWithPermissions is available.
    pub fn has_token_permissions(&self) -> bool {
        self.option("pinUvAuthToken") == Some(true)
    }

    /// The newest CTAP version listed, for humans.
    pub fn ctap_version(&self) -> &str {
        ["FIDO_2_2", "FIDO_2_1", "FIDO_2_1_PRE", "FIDO_2_0", "U2F_V2"]
            .into_iter()
            .find(|v| self.versions.iter().any(|x| x == v))
            .unwrap_or("unknown")
    }

    /// The AAGUID as a UUID string.
    pub fn aaguid_string(&self) -> String {
        format_uuid(&self.aaguid)
    }
}

/// 16 bytes as 8-4-4-4-12 lowercase hex.
pub fn format_uuid(b: &[u8; 16]) -> String {
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

pub fn parse_info(v: &Value) -> Result<Info, Fido2Error> {
    let strings = |key| -> Vec<String> {
        v.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_text)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let aaguid = v
        .get(3)
        .and_then(Value::as_bytes)
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .ok_or_else(|| Fido2Error::malformed("getInfo has no 16-byte AAGUID"))?;
    let options = v
        .get(4)
        .and_then(Value::as_map)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_text()?.to_owned(), v.as_bool()?)))
                .collect()
        })
        .unwrap_or_default();
    let pin_protocols = v
        .get(6)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_int().and_then(|n| u64::try_from(n).ok()))
                .collect()
        })
        .unwrap_or_default();
    Ok(Info {
        versions: strings(1),
        extensions: strings(2),
        aaguid,
        options,
        pin_protocols,
    })
}

/// clientPIN parameters: pinUvAuthProtocol and subCommand, plus `rest`.
pub fn client_pin(protocol: Protocol, sub: u8, rest: Vec<(i64, Value)>) -> Vec<u8> {
    let mut params = vec![
        (1, Value::int(i64::from(protocol.number()))),
        (2, Value::int(i64::from(sub))),
    ];
    params.extend(rest);
    request(CLIENT_PIN, Some(&Value::int_map(params)))
}

/// pinRetries (0x03) from a getRetries answer.
pub fn parse_retries(v: &Value) -> Result<u32, Fido2Error> {
    v.get(3)
        .and_then(Value::as_int)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| Fido2Error::malformed("getRetries has no pinRetries"))
}

/// What makeCredential is asked for.
pub struct MakeCredential<'a> {
    pub client_data_hash: &'a [u8; 32],
    pub rp_id: &'a str,
    /// The user handle: random, as tapsign has no users; the credential is not discoverable.
    pub user_id: &'a [u8],
    pub display_name: &'a str,
    /// pinUvAuthParam and its protocol.
    pub pin_auth: Option<(Vec<u8>, Protocol)>,
}

pub fn make_credential(req: &MakeCredential<'_>) -> Vec<u8> {
    // No credProtect: see firmware-notes/fido2-credprotect.md.
    let ext = vec![("hmac-secret", Value::Bool(true))];
    let mut params = vec![
        (1, Value::bytes(req.client_data_hash)),
        (
            2,
            Value::text_map(vec![
                ("id", Value::text(req.rp_id)),
                ("name", Value::text("tapsign")),
            ]),
        ),
        (
            3,
            Value::text_map(vec![
                ("id", Value::bytes(req.user_id)),
                ("name", Value::text("tapsign")),
                ("displayName", Value::text(req.display_name)),
            ]),
        ),
        (
            4,
            Value::Array(vec![Value::text_map(vec![
                ("alg", Value::int(ES256)),
                ("type", Value::text("public-key")),
            ])]),
        ),
        (6, Value::text_map(ext)),
    ];
    // No options: rk defaults to false (not discoverable), and "up" is not a makeCredential
    // option in CTAP 2.0 (an authenticator would refuse it). UV comes from the PIN.
    if let Some((param, protocol)) = &req.pin_auth {
        params.push((8, Value::bytes(param)));
        params.push((9, Value::int(i64::from(protocol.number()))));
    }
    request(MAKE_CREDENTIAL, Some(&Value::int_map(params)))
}

/// The hmac-secret input of getAssertion (CTAP 2.1 §12.5).
pub struct HmacSecretInput {
    pub key_agreement: Value,
    pub salt_enc: Vec<u8>,
    pub salt_auth: Vec<u8>,
    pub protocol: Protocol,
}

/// What getAssertion is asked for.
pub struct GetAssertion<'a> {
    pub rp_id: &'a str,
    pub client_data_hash: &'a [u8; 32],
    pub credential_id: &'a [u8],
    pub up: bool,
    pub hmac_secret: Option<HmacSecretInput>,
    pub pin_auth: Option<(Vec<u8>, Protocol)>,
}

pub fn get_assertion(req: &GetAssertion<'_>) -> Vec<u8> {
    let allow = Value::Array(vec![Value::text_map(vec![
        ("id", Value::bytes(req.credential_id)),
        ("type", Value::text("public-key")),
    ])]);
    let mut params = vec![
        (1, Value::text(req.rp_id)),
        (2, Value::bytes(req.client_data_hash)),
        (3, allow),
    ];
    if let Some(h) = &req.hmac_secret {
        let mut input = vec![
            (1, h.key_agreement.clone()),
            (2, Value::bytes(&h.salt_enc)),
            (3, Value::bytes(&h.salt_auth)),
        ];
        // CTAP 2.1: sent only when not One, so CTAP 2.0 authenticators see what they know.
        if h.protocol != Protocol::One {
            input.push((4, Value::int(i64::from(h.protocol.number()))));
        }
        params.push((
            4,
            Value::text_map(vec![("hmac-secret", Value::int_map(input))]),
        ));
    }
    // "up" defaults to true; say false only for the no-touch probe. Never "uv": UV is the PIN.
    if !req.up {
        params.push((5, Value::text_map(vec![("up", Value::Bool(false))])));
    }
    if let Some((param, protocol)) = &req.pin_auth {
        params.push((6, Value::bytes(param)));
        params.push((7, Value::int(i64::from(protocol.number()))));
    }
    request(GET_ASSERTION, Some(&Value::int_map(params)))
}

/// Authenticator data (WebAuthn §6.1), split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthData {
    pub rp_id_hash: [u8; 32],
    pub flags: u8,
    /// From the attested credential data (makeCredential only).
    pub credential_id: Option<Vec<u8>>,
    pub aaguid: Option<[u8; 16]>,
    /// The extension outputs, when the ED flag is set.
    pub extensions: Option<Value>,
}

impl AuthData {
    pub fn up(&self) -> bool {
        self.flags & flag::UP != 0
    }
    pub fn uv(&self) -> bool {
        self.flags & flag::UV != 0
    }
}

pub fn parse_auth_data(data: &[u8]) -> Result<AuthData, Fido2Error> {
    let short = || Fido2Error::malformed("its authenticator data is too short");
    let (rp_id_hash, rest) = data.split_first_chunk::<32>().ok_or_else(short)?;
    let (&flags, rest) = rest.split_first().ok_or_else(short)?;
    let (_sign_count, mut rest) = rest.split_first_chunk::<4>().ok_or_else(short)?;
    let (mut credential_id, mut aaguid) = (None, None);
    if flags & flag::AT != 0 {
        let (guid, tail) = rest.split_first_chunk::<16>().ok_or_else(short)?;
        let (len, tail) = tail.split_first_chunk::<2>().ok_or_else(short)?;
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            return Err(short());
        }
        let (id, tail) = tail.split_at(len);
        // The credential public key: a COSE_Key, read only to find where it ends.
        let (_key, used) = cbor::decode_prefix(tail)
            .map_err(|e| Fido2Error::malformed(format!("its credential key is not CBOR ({e})")))?;
        credential_id = Some(id.to_vec());
        aaguid = Some(*guid);
        rest = &tail[used..];
    }
    let extensions = if flags & flag::ED != 0 {
        let (ext, used) = cbor::decode_prefix(rest)
            .map_err(|e| Fido2Error::malformed(format!("its extensions are not CBOR ({e})")))?;
        rest = &rest[used..];
        Some(ext)
    } else {
        None
    };
    if !rest.is_empty() {
        return Err(Fido2Error::malformed(
            "its authenticator data has trailing bytes",
        ));
    }
    Ok(AuthData {
        rp_id_hash: *rp_id_hash,
        flags,
        credential_id,
        aaguid,
        extensions,
    })
}

/// The authenticator data of a makeCredential or getAssertion answer (key 0x01 or 0x02).
pub fn auth_data_of(v: &Value, key: i64) -> Result<AuthData, Fido2Error> {
    let bytes = v
        .get(key)
        .and_then(Value::as_bytes)
        .ok_or_else(|| Fido2Error::malformed("its answer has no authenticator data"))?;
    parse_auth_data(bytes)
}

#[cfg(test)]
#[path = "ctap_tests.rs"]
mod tests;
