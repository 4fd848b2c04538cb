//! tapsign's CTAP2 client: the operations of [`super::device::Authenticator`] as sequences of
//! CTAP2 messages over any [`Channel`] that carries them (today the PC/SC NFC binding).
//!
//! - A PIN becomes a pinUvAuthToken through clientPIN (CTAP 2.1 §6.5.5.7):
//!   getPinUvAuthTokenUsingPinWithPermissions (mc or ga, scoped to tapsign's rp id) when the
//!   authenticator offers it, else CTAP 2.0's getPinToken. The token then authenticates the
//!   request's clientDataHash as pinUvAuthParam.
//! - hmac-secret (§12.5): a fresh key agreement, the salt encrypted (saltEnc) and
//!   authenticated (saltAuth) under its shared secret, the output decrypted with it.

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::cbor::Value;
use super::ctap::{self, GetAssertion, HmacSecretInput, Info, MakeCredential, pin_cmd};
use super::device::{Asserted, AssertionRequest, Registered, Registration};
use super::error::Fido2Error;
use super::pin_protocol::{self, Protocol, SharedSecret};
use crate::secret::SecretString;

/// Carries one CTAP2 request (command byte + CBOR) to the authenticator and its answer
/// (status byte + CBOR) back.
pub trait Channel {
    fn call(&mut self, request: &[u8]) -> Result<Vec<u8>, Fido2Error>;
}

fn call(ch: &mut dyn Channel, request: &[u8]) -> Result<Value, Fido2Error> {
    ctap::response(&ch.call(request)?)
}

pub fn info(ch: &mut dyn Channel) -> Result<Info, Fido2Error> {
    ctap::parse_info(&call(ch, &ctap::request(ctap::GET_INFO, None))?)
}

pub fn pin_retries(ch: &mut dyn Channel, protocol: Protocol) -> Result<u32, Fido2Error> {
    let answer = call(
        ch,
        &ctap::client_pin(protocol, pin_cmd::GET_RETRIES, vec![]),
    )?;
    ctap::parse_retries(&answer)
}

/// getKeyAgreement, then the platform half: our COSE key to send, and the shared secret.
fn key_agreement(
    ch: &mut dyn Channel,
    protocol: Protocol,
) -> Result<(Value, SharedSecret), Fido2Error> {
    let answer = call(
        ch,
        &ctap::client_pin(protocol, pin_cmd::GET_KEY_AGREEMENT, vec![]),
    )?;
    let peer = answer
        .get(1)
        .ok_or_else(|| Fido2Error::malformed("getKeyAgreement has no keyAgreement"))?;
    pin_protocol::encapsulate(protocol, peer).map_err(|e| match e {
        pin_protocol::ProtocolError::Random => Fido2Error::Random,
        e => Fido2Error::malformed(e.to_string()),
    })
}

/// A pinUvAuthToken for `permissions` on `rp_id`, from the PIN.
fn pin_token(
    ch: &mut dyn Channel,
    info: &Info,
    protocol: Protocol,
    pin: &SecretString,
    permissions: u8,
    rp_id: &str,
) -> Result<Zeroizing<Vec<u8>>, Fido2Error> {
    let (platform, shared) = key_agreement(ch, protocol)?;
    let pin_hash_enc = shared
        .encrypt(&pin_protocol::pin_hash(pin.expose()))
        .map_err(|_| Fido2Error::Random)?;
    let mut params = vec![(3, platform), (6, Value::Bytes(pin_hash_enc))];
    let sub = if info.has_token_permissions() {
        params.push((9, Value::int(i64::from(permissions))));
        params.push((10, Value::text(rp_id)));
        pin_cmd::GET_TOKEN_WITH_PERMISSIONS
    } else {
        pin_cmd::GET_PIN_TOKEN
    };
    let answer = call(ch, &ctap::client_pin(protocol, sub, params))?;
    let encrypted = answer
        .get(2)
        .and_then(Value::as_bytes)
        .ok_or_else(|| Fido2Error::malformed("the PIN exchange returned no token"))?;
    let token = shared
        .decrypt(encrypted)
        .map_err(|e| Fido2Error::malformed(e.to_string()))?;
    // One: 16 or 32 bytes (CTAP 2.0 allowed any multiple of 16); Two: exactly 32.
    let fits = match protocol {
        Protocol::One => !token.is_empty() && token.len().is_multiple_of(16),
        Protocol::Two => token.len() == 32,
    };
    if !fits {
        return Err(Fido2Error::malformed("the PIN token has the wrong length"));
    }
    Ok(token)
}

/// pinUvAuthParam for a request: authenticate(pinUvAuthToken, clientDataHash).
fn pin_auth(
    ch: &mut dyn Channel,
    info: &Info,
    protocol: Protocol,
    pin: Option<&SecretString>,
    permissions: u8,
    rp_id: &str,
    client_data_hash: &[u8; 32],
) -> Result<Option<(Vec<u8>, Protocol)>, Fido2Error> {
    let Some(pin) = pin else { return Ok(None) };
    let token = pin_token(ch, info, protocol, pin, permissions, rp_id)?;
    let param = pin_protocol::authenticate(protocol, &token, client_data_hash);
    Ok(Some((param, protocol)))
}

fn random<const N: usize>() -> Result<[u8; N], Fido2Error> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|_| Fido2Error::Random)?;
    Ok(out)
}

/// The rp id hash must be ours: a mismatch means the answer is for another request.
fn check_rp(auth: &ctap::AuthData, rp_id: &str) -> Result<(), Fido2Error> {
    if auth.rp_id_hash[..] != Sha256::digest(rp_id.as_bytes())[..] {
        return Err(Fido2Error::malformed(
            "its authenticator data is for another rp id",
        ));
    }
    Ok(())
}

pub fn make_credential(
    ch: &mut dyn Channel,
    info: &Info,
    req: &Registration<'_>,
) -> Result<Registered, Fido2Error> {
    // There is no WebAuthn client data: the hash only has to be fresh.
    let client_data_hash = random::<32>()?;
    let user_id = random::<16>()?;
    let pin_auth = pin_auth(
        ch,
        info,
        req.protocol,
        req.pin,
        ctap::permission::MAKE_CREDENTIAL,
        req.rp_id,
        &client_data_hash,
    )?;
    let request = ctap::make_credential(&MakeCredential {
        client_data_hash: &client_data_hash,
        rp_id: req.rp_id,
        user_id: &user_id,
        display_name: req.display_name,
        pin_auth,
    });
    let answer = call(ch, &request)?;
    let auth = ctap::auth_data_of(&answer, 2)?;
    check_rp(&auth, req.rp_id)?;
    let credential_id = auth
        .credential_id
        .clone()
        .ok_or_else(|| Fido2Error::malformed("makeCredential returned no credential"))?;
    let hmac_secret = auth
        .extensions
        .as_ref()
        .and_then(|e| e.get_text("hmac-secret"))
        .and_then(Value::as_bool)
        == Some(true);
    Ok(Registered {
        credential_id,
        hmac_secret,
    })
}

pub fn get_assertion(
    ch: &mut dyn Channel,
    info: &Info,
    req: &AssertionRequest<'_>,
) -> Result<Asserted, Fido2Error> {
    let client_data_hash = random::<32>()?;
    let pin_auth = pin_auth(
        ch,
        info,
        req.protocol,
        req.pin,
        ctap::permission::GET_ASSERTION,
        req.rp_id,
        &client_data_hash,
    )?;
    let mut shared = None;
    let hmac_secret = match req.salt {
        None => None,
        Some(salt) => {
            let (key_agreement, secret) = key_agreement(ch, req.protocol)?;
            let salt_enc = secret.encrypt(salt).map_err(|_| Fido2Error::Random)?;
            let salt_auth = secret.authenticate(&salt_enc);
            shared = Some(secret);
            Some(HmacSecretInput {
                key_agreement,
                salt_enc,
                salt_auth,
                protocol: req.protocol,
            })
        }
    };
    let request = ctap::get_assertion(&GetAssertion {
        rp_id: req.rp_id,
        client_data_hash: &client_data_hash,
        credential_id: req.credential_id,
        up: req.up,
        hmac_secret,
        pin_auth,
    });
    let answer = call(ch, &request)?;
    let auth = ctap::auth_data_of(&answer, 2)?;
    check_rp(&auth, req.rp_id)?;
    let hmac_output = match shared {
        None => None,
        Some(secret) => Some(hmac_output(&auth, &secret)?),
    };
    Ok(Asserted {
        up: auth.up(),
        uv: auth.uv(),
        hmac_output,
    })
}

/// output1 from the hmac-secret extension output: decrypt(sharedSecret, encrypted output).
fn hmac_output(
    auth: &ctap::AuthData,
    secret: &SharedSecret,
) -> Result<Zeroizing<[u8; 32]>, Fido2Error> {
    let encrypted = auth
        .extensions
        .as_ref()
        .and_then(|e| e.get_text("hmac-secret"))
        .and_then(Value::as_bytes)
        .ok_or_else(|| Fido2Error::malformed("the assertion carries no hmac-secret output"))?;
    let plain = secret
        .decrypt(encrypted)
        .map_err(|e| Fido2Error::malformed(e.to_string()))?;
    let mut out = Zeroizing::new([0u8; 32]);
    if plain.len() != 32 {
        return Err(Fido2Error::malformed(
            "the hmac-secret output is not 32 bytes",
        ));
    }
    out.copy_from_slice(&plain);
    Ok(out)
}
