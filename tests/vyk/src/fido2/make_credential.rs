//! authenticatorMakeCredential (CTAP 2.1 §6.1): ES256 only, non-discoverable credentials,
//! the hmac-secret and credProtect extensions, packed self-attestation.

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};

use super::cbor::Value;
use super::credential::{CredProtect, Credential};
use super::pin_uv::cose_ec2;
use super::status::{CtapResult, Status};
use super::{
    Authenticator, FLAG_AT, FLAG_ED, FLAG_UP, FLAG_UV, PERMISSION_MC, Pending, Step, auth_data,
    bytes, options, sha256, typed,
};

/// COSE algorithm ES256.
const ES256: i128 = -7;

/// A makeCredential that passed every check and waits for the touch.
pub struct Prepared {
    client_data_hash: Vec<u8>,
    rp_id_hash: [u8; 32],
    uv: bool,
    used_token: bool,
    hmac_secret: bool,
    cred_protect: Option<CredProtect>,
}

pub fn request(auth: &mut Authenticator, req: &Value) -> CtapResult<Step> {
    let cdh = bytes(req, 1)?.ok_or(Status::MissingParameter)?;
    let rp = req.get_int(2).ok_or(Status::MissingParameter)?;
    let user = req.get_int(3).ok_or(Status::MissingParameter)?;
    let params = req.get_int(4).ok_or(Status::MissingParameter)?;
    let rp_id = typed_field(rp, "id")?;
    if user.as_map().is_none() || typed(user.get_text("id"), Value::as_bytes)?.is_none() {
        return Err(Status::CborUnexpectedType);
    }
    let params = params.as_array().ok_or(Status::CborUnexpectedType)?;
    let exclude = match req.get_int(5) {
        Some(v) => v.as_array().ok_or(Status::CborUnexpectedType)?,
        None => &[],
    };
    let opts = options(req, 7)?;
    let pin_param = bytes(req, 8)?;

    // A zero-length pinUvAuthParam asks "touch me, and tell me if a PIN is set" (§6.1.2 1).
    if pin_param.is_some_and(<[u8]>::is_empty) {
        let status = match auth.has_pin() {
            true => Status::PinInvalid,
            false => Status::PinNotSet,
        };
        return Ok(Step::Touch(Pending::ThenFail(status)));
    }
    let protocol = match pin_param {
        Some(_) => Some(auth.protocol_param(req, 9)?),
        None => None,
    };
    if !es256_offered(params)? {
        return Err(Status::UnsupportedAlgorithm);
    }
    if opts.rk == Some(true) {
        return Err(Status::UnsupportedOption);
    }
    if opts.up == Some(false) {
        return Err(Status::InvalidOption);
    }
    // No built-in UV (no fingerprint): uv=true is not something this key can do, unless the
    // pinUvAuthParam makes the option moot.
    if pin_param.is_none() && opts.uv == Some(true) {
        return Err(Status::InvalidOption);
    }
    let uv_not_required = auth.config.ctap21 && auth.config.make_cred_uv_not_rqd;
    if pin_param.is_none() && (auth.config.always_uv || (auth.has_pin() && !uv_not_required)) {
        return Err(match auth.has_pin() {
            true => Status::PuatRequired,
            false => Status::PinNotSet,
        });
    }
    let uv = match (pin_param, protocol) {
        (Some(param), Some(p)) => {
            auth.check_token(p, param, cdh, PERMISSION_MC, rp_id)?;
            true
        }
        _ => false,
    };
    let rp_id_hash = sha256(rp_id.as_bytes());
    for descriptor in exclude {
        if let Some(cred) = ours(auth, &rp_id_hash, descriptor)?
            && (uv || cred.cred_protect != CredProtect::UvRequired)
        {
            // The RP learns the key is already registered only after a touch (§6.1.2 9).
            return Ok(Step::Touch(Pending::ThenFail(Status::CredentialExcluded)));
        }
    }
    let (hmac_secret, cred_protect) = extensions(auth, req)?;
    Ok(Step::Touch(Pending::MakeCredential(Box::new(Prepared {
        client_data_hash: cdh.to_vec(),
        rp_id_hash,
        uv,
        used_token: pin_param.is_some(),
        hmac_secret,
        cred_protect,
    }))))
}

pub fn finish(auth: &mut Authenticator, p: Prepared) -> CtapResult<Option<Value>> {
    if p.used_token {
        auth.spend_token();
    }
    let policy = p.cred_protect.unwrap_or(CredProtect::UvOptional);
    let cred = Credential::generate(p.hmac_secret, policy)?;
    let id = cred.seal(&auth.store.master, &p.rp_id_hash)?;
    let mut attested = auth.config.aaguid.to_vec();
    attested.extend_from_slice(&u16::try_from(id.len()).unwrap_or(0).to_be_bytes());
    attested.extend_from_slice(&id);
    attested.extend(cose_ec2(&cred.key.public_key(), -7).encode());
    let mut ext = Vec::new();
    if let Some(level) = p.cred_protect {
        ext.push(("credProtect", Value::from(level as u64)));
    }
    if p.hmac_secret {
        ext.push(("hmac-secret", Value::Bool(true)));
    }
    let mut flags = FLAG_UP | FLAG_AT;
    if p.uv {
        flags |= FLAG_UV;
    }
    if !ext.is_empty() {
        flags |= FLAG_ED;
        attested.extend(Value::map(ext).encode());
    }
    let count = auth.next_sign_count();
    let data = auth_data(&p.rp_id_hash, flags, count, &attested);
    // Packed self-attestation: signed by the credential's own key over authData || cdh.
    let signed = [&data[..], &p.client_data_hash].concat();
    let sig: Signature = SigningKey::from(&cred.key).sign(&signed);
    Ok(Some(Value::map([
        (1i64, Value::from("packed")),
        (2, Value::from(data)),
        (
            3,
            Value::map([
                ("alg", Value::from(-7i64)),
                ("sig", Value::from(sig.to_der().as_bytes())),
            ]),
        ),
    ])))
}

/// Whether the (well-formed) pubKeyCredParams list offers ES256 for "public-key".
fn es256_offered(params: &[Value]) -> CtapResult<bool> {
    let mut found = false;
    for p in params {
        let alg = typed(p.get_text("alg"), Value::as_int)?.ok_or(Status::MissingParameter)?;
        let kind = typed(p.get_text("type"), Value::as_text)?.ok_or(Status::MissingParameter)?;
        found |= alg == ES256 && kind == "public-key";
    }
    Ok(found)
}

/// The credential a descriptor names, if this device issued it for this RP.
pub fn ours(
    auth: &Authenticator,
    rp_id_hash: &[u8; 32],
    descriptor: &Value,
) -> CtapResult<Option<Credential>> {
    let id = typed(descriptor.get_text("id"), Value::as_bytes)?.ok_or(Status::MissingParameter)?;
    let kind =
        typed(descriptor.get_text("type"), Value::as_text)?.ok_or(Status::MissingParameter)?;
    if kind != "public-key" {
        return Ok(None);
    }
    Ok(Credential::open(&auth.store.master, rp_id_hash, id))
}

/// hmac-secret and credProtect inputs; other extensions are ignored, as the spec allows.
fn extensions(auth: &Authenticator, req: &Value) -> CtapResult<(bool, Option<CredProtect>)> {
    let Some(ext) = req.get_int(6) else {
        return Ok((false, None));
    };
    if ext.as_map().is_none() {
        return Err(Status::CborUnexpectedType);
    }
    let hmac = typed(ext.get_text("hmac-secret"), Value::as_bool)?.unwrap_or(false);
    let protect = match typed(ext.get_text("credProtect"), Value::as_int)? {
        Some(_) if !auth.config.ctap21 => None,
        Some(n) => Some(CredProtect::from_level(n).ok_or(Status::InvalidOption)?),
        None => None,
    };
    Ok((hmac, protect))
}

/// A required text field of a map (rp.id).
fn typed_field<'a>(map: &'a Value, name: &str) -> CtapResult<&'a str> {
    if map.as_map().is_none() {
        return Err(Status::CborUnexpectedType);
    }
    typed(map.get_text(name), Value::as_text)?.ok_or(Status::MissingParameter)
}
