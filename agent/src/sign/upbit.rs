//! upbit signing (being written).

use tapsign_proto::{SignRequest, SignedRequest};

use super::{SignError, SignOptions, Stamp};
use crate::credential::Credential;

pub fn sign(
    _cred: &Credential,
    _req: &SignRequest,
    _stamp: &Stamp,
    _opts: &SignOptions,
) -> Result<SignedRequest, SignError> {
    Err(SignError::BadRequest("not implemented yet".into()))
}
