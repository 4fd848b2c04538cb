//! authenticatorClientPIN (CTAP 2.1 §6.5.5): retries, key agreement, set and change PIN,
//! and the pinUvAuthToken (legacy getPinToken and getPinUvAuthTokenUsingPinWithPermissions).

use super::cbor::Value;
use super::pin_uv::{KeyAgreement, Protocol, random_array};
use super::status::{CtapResult, Status};
use super::{
    Authenticator, MISMATCHES_PER_POWER_CYCLE, PERMISSION_GA, PERMISSION_MC, PIN_RETRIES,
    SUPPORTED_PERMISSIONS, TokenUse, bytes, int, pin_hash, text,
};

const GET_PIN_RETRIES: i128 = 0x01;
const GET_KEY_AGREEMENT: i128 = 0x02;
const SET_PIN: i128 = 0x03;
const CHANGE_PIN: i128 = 0x04;
const GET_PIN_TOKEN: i128 = 0x05;
const GET_PIN_UV_AUTH_TOKEN_USING_PIN_WITH_PERMISSIONS: i128 = 0x09;

/// The padded new PIN is always 64 bytes (§6.5.5.5).
const PADDED_PIN_LEN: usize = 64;
const MIN_PIN_CODE_POINTS: usize = 4;

pub fn request(auth: &mut Authenticator, req: &Value) -> CtapResult<Value> {
    let sub = int(req, 2)?.ok_or(Status::MissingParameter)?;
    match sub {
        GET_PIN_RETRIES => Ok(retries(auth)),
        GET_KEY_AGREEMENT => {
            auth.protocol_param(req, 1)?;
            Ok(Value::map([(
                1i64,
                auth.cycle.key_agreement.cose_public_key(),
            )]))
        }
        SET_PIN => set_pin(auth, req).map(|()| Value::map::<i64>([])),
        CHANGE_PIN => change_pin(auth, req).map(|()| Value::map::<i64>([])),
        GET_PIN_TOKEN => token(auth, req, false),
        GET_PIN_UV_AUTH_TOKEN_USING_PIN_WITH_PERMISSIONS if auth.config.ctap21 => {
            token(auth, req, true)
        }
        _ => Err(Status::InvalidSubcommand),
    }
}

fn retries(auth: &Authenticator) -> Value {
    let mut answer = vec![(3i64, Value::from(u64::from(auth.store.pin_retries)))];
    if auth.config.ctap21 {
        let needs_power_cycle = auth.cycle.mismatches >= MISMATCHES_PER_POWER_CYCLE;
        answer.push((4, Value::Bool(needs_power_cycle)));
    }
    Value::map(answer)
}

/// The protocol and the shared secret from the platform's keyAgreement (key 3).
fn shared_secret(auth: &Authenticator, req: &Value) -> CtapResult<(Protocol, Vec<u8>)> {
    let protocol = auth.protocol_param(req, 1)?;
    let peer = req.get_int(3).ok_or(Status::MissingParameter)?;
    let shared = auth.cycle.key_agreement.decapsulate(protocol, peer)?;
    Ok((protocol, shared))
}

fn set_pin(auth: &mut Authenticator, req: &Value) -> CtapResult<()> {
    let new_pin_enc = bytes(req, 5)?.ok_or(Status::MissingParameter)?;
    let param = bytes(req, 4)?.ok_or(Status::MissingParameter)?;
    req.get_int(3).ok_or(Status::MissingParameter)?;
    auth.protocol_param(req, 1)?;
    if auth.has_pin() {
        return Err(Status::NotAllowed);
    }
    let (protocol, shared) = shared_secret(auth, req)?;
    if !protocol.verify(&shared, new_pin_enc, param) {
        return Err(Status::PinAuthInvalid);
    }
    let pin = new_pin(protocol, &shared, new_pin_enc)?;
    auth.store.pin_hash = Some(pin_hash(&pin));
    auth.store.pin_retries = PIN_RETRIES;
    Ok(())
}

fn change_pin(auth: &mut Authenticator, req: &Value) -> CtapResult<()> {
    let new_pin_enc = bytes(req, 5)?.ok_or(Status::MissingParameter)?;
    let pin_hash_enc = bytes(req, 6)?.ok_or(Status::MissingParameter)?;
    let param = bytes(req, 4)?.ok_or(Status::MissingParameter)?;
    req.get_int(3).ok_or(Status::MissingParameter)?;
    auth.protocol_param(req, 1)?;
    check_pin_usable(auth)?;
    let (protocol, shared) = shared_secret(auth, req)?;
    let signed = [new_pin_enc, pin_hash_enc].concat();
    if !protocol.verify(&shared, &signed, param) {
        return Err(Status::PinAuthInvalid);
    }
    verify_pin(auth, protocol, &shared, pin_hash_enc)?;
    let pin = new_pin(protocol, &shared, new_pin_enc)?;
    auth.store.pin_hash = Some(pin_hash(&pin));
    // A new PIN invalidates any token handed out under the old one.
    auth.cycle.token = random_array()?;
    auth.cycle.token_use = None;
    Ok(())
}

/// getPinToken (legacy: mc and ga, any RP) or getPinUvAuthTokenUsingPinWithPermissions.
fn token(auth: &mut Authenticator, req: &Value, with_permissions: bool) -> CtapResult<Value> {
    let pin_hash_enc = bytes(req, 6)?.ok_or(Status::MissingParameter)?;
    req.get_int(3).ok_or(Status::MissingParameter)?;
    auth.protocol_param(req, 1)?;
    let requested = int(req, 9)?;
    let rp_id = text(req, 10)?;
    let (permissions, rp_id) = if with_permissions {
        let p = requested.ok_or(Status::MissingParameter)?;
        let p = u8::try_from(p).map_err(|_| Status::UnauthorizedPermission)?;
        if p == 0 {
            return Err(Status::InvalidParameter);
        }
        if p & !SUPPORTED_PERMISSIONS != 0 {
            return Err(Status::UnauthorizedPermission);
        }
        // mc and ga are scoped to one RP: the token is bound to it from the start.
        (p, Some(rp_id.ok_or(Status::MissingParameter)?.to_owned()))
    } else {
        if requested.is_some() || rp_id.is_some() {
            return Err(Status::InvalidParameter);
        }
        (PERMISSION_MC | PERMISSION_GA, None)
    };
    check_pin_usable(auth)?;
    let (protocol, shared) = shared_secret(auth, req)?;
    verify_pin(auth, protocol, &shared, pin_hash_enc)?;
    // resetPinUvAuthToken, then beginUsingPinUvAuthToken (§6.5.5.7).
    auth.cycle.token = random_array()?;
    auth.cycle.token_use = Some(TokenUse {
        permissions,
        rp_id,
        user_verified: true,
    });
    let token_enc = protocol.encrypt(&shared, &auth.cycle.token)?;
    Ok(Value::map([(2i64, Value::from(token_enc))]))
}

/// PIN set, not blocked, and no power cycle owed.
fn check_pin_usable(auth: &Authenticator) -> CtapResult<()> {
    if !auth.has_pin() {
        return Err(Status::PinNotSet);
    }
    if auth.store.pin_retries == 0 {
        return Err(Status::PinBlocked);
    }
    if auth.cycle.mismatches >= MISMATCHES_PER_POWER_CYCLE {
        return Err(Status::PinAuthBlocked);
    }
    Ok(())
}

/// Compares the platform's encrypted LEFT(SHA-256(PIN), 16) with the stored one. A try is
/// spent before comparing, and given back on a match; a mismatch also regenerates the key
/// agreement key, so the platform must fetch a new one (§6.5.5.7 step "pinHashEnc").
fn verify_pin(
    auth: &mut Authenticator,
    protocol: Protocol,
    shared: &[u8],
    pin_hash_enc: &[u8],
) -> CtapResult<()> {
    let want_len = match protocol {
        Protocol::One => 16,
        Protocol::Two => 32,
    };
    if pin_hash_enc.len() != want_len {
        return Err(Status::InvalidParameter);
    }
    auth.store.pin_retries = auth.store.pin_retries.saturating_sub(1);
    let given = protocol.decrypt(shared, pin_hash_enc)?;
    let matches = auth.store.pin_hash.is_some_and(|h| h[..] == given[..]);
    if !matches {
        auth.cycle.key_agreement = KeyAgreement::generate()?;
        auth.cycle.mismatches = auth.cycle.mismatches.saturating_add(1);
        return Err(if auth.store.pin_retries == 0 {
            Status::PinBlocked
        } else if auth.cycle.mismatches >= MISMATCHES_PER_POWER_CYCLE {
            Status::PinAuthBlocked
        } else {
            Status::PinInvalid
        });
    }
    auth.store.pin_retries = PIN_RETRIES;
    auth.cycle.mismatches = 0;
    Ok(())
}

/// Decrypts newPinEnc and applies the PIN policy: 4 or more Unicode code points, at most 63
/// bytes, zero-padded to 64 bytes.
fn new_pin(protocol: Protocol, shared: &[u8], new_pin_enc: &[u8]) -> CtapResult<Vec<u8>> {
    let padded = protocol.decrypt(shared, new_pin_enc)?;
    if padded.len() != PADDED_PIN_LEN {
        return Err(Status::InvalidParameter);
    }
    let len = padded.iter().position(|b| *b == 0).unwrap_or(padded.len());
    if len == PADDED_PIN_LEN || padded[len..].iter().any(|b| *b != 0) {
        return Err(Status::PinPolicyViolation);
    }
    let pin = &padded[..len];
    let code_points = std::str::from_utf8(pin)
        .map_err(|_| Status::PinPolicyViolation)?
        .chars()
        .count();
    if code_points < MIN_PIN_CODE_POINTS {
        return Err(Status::PinPolicyViolation);
    }
    Ok(pin.to_vec())
}
