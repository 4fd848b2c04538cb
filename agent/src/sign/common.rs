//! Pieces several schemes share: MACs, encodings, credential checks. (Time formats are in
//! `crate::clock`.)

use base64ct::{Base64, Encoding};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Sha256, Sha512};

use super::SignError;
use crate::credential::Credential;

/// HMAC-SHA256 of `msg` under `key`, raw bytes. Every scheme's HMAC goes through here or
/// [`hmac_sha512`]: the keyed state (built from the API secret) wipes itself when dropped (the
/// `zeroize` features of `hmac` and `sha2`), so no copy of it outlives the signature.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// HMAC-SHA512 of `msg` under `key`, raw bytes.
pub fn hmac_sha512(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// Standard base64 with padding (`+/=`), as OKX, KuCoin, Bitget, Kraken and Binance want it.
pub fn b64(bytes: &[u8]) -> String {
    Base64::encode_string(bytes)
}

/// The API key and secret a scheme needs, checked the same way for every exchange: an API key
/// of visible ASCII (it goes into a header) and a non-empty secret.
pub fn check_key(cred: &Credential, exchange: &str) -> Result<(), SignError> {
    let key = cred.api_key.expose();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(SignError::BadCredential(format!(
            "the {exchange} API key is empty or has characters other than visible ASCII; \
             store it again with `tapsign key add`"
        )));
    }
    if cred.secret.is_empty() {
        return Err(SignError::BadCredential(format!(
            "the {exchange} secret is empty; store it again with `tapsign key add`"
        )));
    }
    Ok(())
}

/// The passphrase of an exchange that has one (OKX, KuCoin, Bitget).
pub fn passphrase<'a>(cred: &'a Credential, exchange: &str) -> Result<&'a str, SignError> {
    match &cred.passphrase {
        Some(p) if !p.is_empty() => Ok(p.expose()),
        _ => Err(SignError::BadCredential(format!(
            "the {exchange} credential has no passphrase; store it again with `tapsign key add` \
             and give the passphrase you chose when creating the API key"
        ))),
    }
}

/// Refuse a body on methods whose parameters travel in the query: the exchanges below sign
/// the body only for POST/PUT (and would ignore a GET body the agent had signed).
pub fn no_body_on_get(req: &tapsign_proto::SignRequest, exchange: &str) -> Result<(), SignError> {
    if matches!(req.method.as_str(), "GET" | "DELETE") && !req.body.is_empty() {
        return Err(SignError::BadRequest(format!(
            "{exchange} {} requests carry their parameters in the query; move the body into \
             \"query\"",
            req.method
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the `zeroize` features: an HMAC's keyed state is two hash cores (inner and outer,
    /// each having absorbed the secret), and each must wipe itself on drop.
    #[test]
    fn keyed_hmac_states_wipe_themselves_on_drop() {
        fn wipes<T: zeroize::ZeroizeOnDrop>() {}
        wipes::<<Sha256 as hmac::EagerHash>::Core>();
        wipes::<<Sha512 as hmac::EagerHash>::Core>();
    }
}
