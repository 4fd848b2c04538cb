//! authenticatorGetAssertion (CTAP 2.1 §6.2) for credentials named in the allowList, with
//! the up=false preflight and the hmac-secret extension (§12.5).

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};

use super::cbor::Value;
use super::credential::{CredProtect, Credential};
use super::make_credential::ours;
use super::pin_uv::{Protocol, hmac_sha256};
use super::status::{CtapResult, Status};
use super::{
    Authenticator, FLAG_ED, FLAG_UP, FLAG_UV, PERMISSION_GA, Pending, Step, auth_data, bytes,
    options, sha256, text, typed,
};

/// A getAssertion that passed every check; with up it waits for the touch.
pub struct Prepared {
    client_data_hash: Vec<u8>,
    rp_id_hash: [u8; 32],
    credential_id: Vec<u8>,
    credential: Credential,
    up: bool,
    uv: bool,
    used_token: bool,
    /// The encrypted hmac-secret output, if asked for and the credential has it.
    hmac_output: Option<Vec<u8>>,
}

pub fn request(auth: &mut Authenticator, req: &Value) -> CtapResult<Step> {
    let rp_id = text(req, 1)?.ok_or(Status::MissingParameter)?;
    let cdh = bytes(req, 2)?.ok_or(Status::MissingParameter)?;
    let allow = match req.get_int(3) {
        Some(v) => v.as_array().ok_or(Status::CborUnexpectedType)?,
        None => &[],
    };
    let opts = options(req, 5)?;
    let pin_param = bytes(req, 6)?;
    if pin_param.is_some_and(<[u8]>::is_empty) {
        let status = match auth.has_pin() {
            true => Status::PinInvalid,
            false => Status::PinNotSet,
        };
        return Ok(Step::Touch(Pending::ThenFail(status)));
    }
    let protocol = match pin_param {
        Some(_) => Some(auth.protocol_param(req, 7)?),
        None => None,
    };
    if opts.rk.is_some() {
        return Err(Status::UnsupportedOption);
    }
    let up = opts.up.unwrap_or(true);
    if pin_param.is_none() && opts.uv == Some(true) {
        return Err(Status::InvalidOption);
    }
    if pin_param.is_none() && up && auth.config.always_uv {
        return Err(match auth.has_pin() {
            true => Status::PuatRequired,
            false => Status::PinNotSet,
        });
    }
    let uv = match (pin_param, protocol) {
        (Some(param), Some(p)) => {
            auth.check_token(p, param, cdh, PERMISSION_GA, rp_id)?;
            true
        }
        _ => false,
    };
    let rp_id_hash = sha256(rp_id.as_bytes());
    let mut found = None;
    for descriptor in allow {
        if let Some(cred) = ours(auth, &rp_id_hash, descriptor)?
            && (uv || cred.cred_protect != CredProtect::UvRequired)
            && found.is_none()
        {
            let id = typed(descriptor.get_text("id"), Value::as_bytes)?.unwrap_or_default();
            found = Some((id.to_vec(), cred));
        }
    }
    // Without an allowList only discoverable credentials could answer, and there are none.
    let Some((credential_id, credential)) = found else {
        // With up, the user touches before learning the key has no such credential, as on a
        // real key; the up=false preflight answers at once.
        return match up {
            true => Ok(Step::Touch(Pending::ThenFail(Status::NoCredentials))),
            false => Err(Status::NoCredentials),
        };
    };
    let hmac_output = match hmac_secret_input(req)? {
        Some(input) if credential.hmac_secret => Some(hmac_secret(auth, input, &credential, uv)?),
        _ => None,
    };
    let prepared = Prepared {
        client_data_hash: cdh.to_vec(),
        rp_id_hash,
        credential_id,
        credential,
        up,
        uv,
        used_token: pin_param.is_some(),
        hmac_output,
    };
    if up {
        return Ok(Step::Touch(Pending::GetAssertion(Box::new(prepared))));
    }
    let answer = finish(auth, prepared)?;
    Ok(Step::Done(super::ok(answer.unwrap_or(Value::Null))))
}

pub fn finish(auth: &mut Authenticator, p: Prepared) -> CtapResult<Option<Value>> {
    // The up=false preflight leaves the token as it was; a touch-confirmed use spends it.
    if p.used_token && p.up {
        auth.spend_token();
    }
    let mut flags = 0;
    if p.up {
        flags |= FLAG_UP;
    }
    if p.uv {
        flags |= FLAG_UV;
    }
    let mut ext = Vec::new();
    if let Some(out) = p.hmac_output {
        flags |= FLAG_ED;
        ext = Value::map([("hmac-secret", Value::from(out))]).encode();
    }
    let count = auth.next_sign_count();
    let data = auth_data(&p.rp_id_hash, flags, count, &ext);
    let signed = [&data[..], &p.client_data_hash].concat();
    let sig: Signature = SigningKey::from(&p.credential.key).sign(&signed);
    Ok(Some(Value::map([
        (
            1i64,
            Value::map([
                ("id", Value::from(p.credential_id)),
                ("type", Value::from("public-key")),
            ]),
        ),
        (2, Value::from(data)),
        (3, Value::from(sig.to_der().as_bytes())),
    ])))
}

/// The hmac-secret input map, if the request has one.
fn hmac_secret_input(req: &Value) -> CtapResult<Option<&Value>> {
    let Some(ext) = req.get_int(4) else {
        return Ok(None);
    };
    if ext.as_map().is_none() {
        return Err(Status::CborUnexpectedType);
    }
    match ext.get_text("hmac-secret") {
        Some(v) if v.as_map().is_some() => Ok(Some(v)),
        Some(_) => Err(Status::CborUnexpectedType),
        None => Ok(None),
    }
}

/// hmac-secret (§12.5): decrypt one or two salts with the shared secret from the platform's
/// key agreement, HMAC them with CredRandomWithUV or CredRandomWithoutUV, and encrypt the
/// result back.
fn hmac_secret(
    auth: &Authenticator,
    input: &Value,
    cred: &Credential,
    uv: bool,
) -> CtapResult<Vec<u8>> {
    let key_agreement = input.get_int(1).ok_or(Status::MissingParameter)?;
    let salt_enc = typed(input.get_int(2), Value::as_bytes)?.ok_or(Status::MissingParameter)?;
    let salt_auth = typed(input.get_int(3), Value::as_bytes)?.ok_or(Status::MissingParameter)?;
    // Absent means protocol one (the CTAP 2.0 form of the extension).
    let protocol = match typed(input.get_int(4), Value::as_int)? {
        None => Protocol::One,
        Some(n) => Protocol::from_number(n)
            .filter(|p| auth.protocol_supported(*p))
            .ok_or(Status::InvalidParameter)?,
    };
    let shared = auth
        .cycle
        .key_agreement
        .decapsulate(protocol, key_agreement)?;
    if !protocol.verify(&shared, salt_enc, salt_auth) {
        return Err(Status::PinAuthInvalid);
    }
    let salts = protocol.decrypt(&shared, salt_enc)?;
    if salts.len() != 32 && salts.len() != 64 {
        return Err(Status::InvalidLength);
    }
    let cred_random = match uv {
        true => &cred.cred_random_with_uv,
        false => &cred.cred_random_without_uv,
    };
    let output: Vec<u8> = salts
        .chunks(32)
        .flat_map(|salt| hmac_sha256(cred_random, salt))
        .collect();
    protocol.encrypt(&shared, &output)
}
