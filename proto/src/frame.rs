//! Framing: a 4-byte big-endian length, then that many bytes of one JSON object.
//!
//! The length is checked against [`MAX_FRAME`] before a buffer is allocated, so a peer that
//! announces 4 GiB costs us four bytes of reading, not four gigabytes of memory.

use serde::{Serialize, de::DeserializeOwned};
use std::io::{Read, Write};

use crate::ProtoError;

/// The largest frame body either side accepts: 64 KiB.
pub const MAX_FRAME: usize = 64 * 1024;

/// Check a frame's announced length; the only place the limit is enforced.
pub fn check_len(header: [u8; 4]) -> Result<usize, ProtoError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(ProtoError::FrameTooLarge {
            len,
            max: MAX_FRAME,
        });
    }
    Ok(len)
}

/// Serialize a message into a whole frame (header and body).
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, ProtoError> {
    let body = serde_json::to_vec(msg).map_err(|e| ProtoError::Malformed(e.to_string()))?;
    if body.len() > MAX_FRAME {
        return Err(ProtoError::FrameTooLarge {
            len: body.len(),
            max: MAX_FRAME,
        });
    }
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Parse one frame body into a message.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ProtoError> {
    serde_json::from_slice(body).map_err(|e| ProtoError::Malformed(describe(&e)))
}

/// serde_json's message, without the values it quotes. `invalid type: integer `123456``
/// or `invalid type: string "123456"` would otherwise send a mistyped PIN back in the error
/// (and into any log of it). The kind of value (string, integer, ...), field and variant
/// names are kept: they say what to fix and are the protocol's own words.
fn describe(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    for prefix in ["invalid type: ", "invalid value: "] {
        // `{prefix}{what was found}, expected {what was wanted}[ at line L column C]`: what was
        // found may hold anything the client sent, ", expected " included; what was wanted is
        // the protocol's, so the last ", expected " starts it.
        let Some(rest) = msg.strip_prefix(prefix) else {
            continue;
        };
        let Some(at) = rest.rfind(", expected ") else {
            return format!("{}(value hidden)", prefix);
        };
        let found = &rest[..at];
        let kind = found.split(['"', '`', '\'']).next().unwrap_or("").trim();
        return format!("{prefix}{kind} (value hidden){}", &rest[at..]);
    }
    // Others quote at most names (`unknown field `x``) or a length, in backticks; a value in
    // backticks is hidden all the same.
    let mut out = String::with_capacity(msg.len());
    let mut inside = false;
    for c in msg.chars() {
        match c {
            '`' if msg.starts_with("invalid length") => {
                inside = !inside;
                if inside {
                    out.push_str("(value hidden)");
                }
            }
            _ if inside => {}
            _ => out.push(c),
        }
    }
    out
}

/// Decode a whole frame held in memory. Returns the message and the bytes it used; `Ok(None)`
/// when more bytes are needed. The fuzz target drives this.
pub fn decode<T: DeserializeOwned>(buf: &[u8]) -> Result<Option<(T, usize)>, ProtoError> {
    let Some(header) = buf.get(..4) else {
        return Ok(None);
    };
    let len = check_len([header[0], header[1], header[2], header[3]])?;
    let Some(body) = buf.get(4..4 + len) else {
        return Ok(None);
    };
    Ok(Some((decode_body(body)?, 4 + len)))
}

/// Read one frame body from a blocking reader. `Err(Closed)` on a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> Result<Vec<u8>, ProtoError> {
    let mut header = [0u8; 4];
    match r.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(ProtoError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = check_len(header)?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(body)
}

/// Write one message as a frame to a blocking writer.
pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<(), ProtoError> {
    w.write_all(&encode(msg)?)?;
    w.flush()?;
    Ok(())
}

#[cfg(feature = "tokio")]
mod async_io {
    use super::*;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    /// Read one frame body from an async reader. `Err(Closed)` on a clean end of stream.
    pub async fn read_frame_async<R: AsyncRead + Unpin>(r: &mut R) -> Result<Vec<u8>, ProtoError> {
        let mut header = [0u8; 4];
        match r.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(ProtoError::Closed);
            }
            Err(e) => return Err(e.into()),
        }
        let len = check_len(header)?;
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).await?;
        Ok(body)
    }

    /// Write one message as a frame to an async writer.
    pub async fn write_frame_async<W: AsyncWrite + Unpin, T: Serialize>(
        w: &mut W,
        msg: &T,
    ) -> Result<(), ProtoError> {
        w.write_all(&encode(msg)?).await?;
        w.flush().await?;
        Ok(())
    }
}

#[cfg(feature = "tokio")]
pub use async_io::{read_frame_async, write_frame_async};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Request;

    #[test]
    fn oversized_length_is_refused_before_reading_the_body() {
        // The reader holds only the header: if the decoder tried to read (or allocate) the
        // body it would fail differently.
        let mut r: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        match read_frame(&mut r) {
            Err(ProtoError::FrameTooLarge { len, .. }) => assert_eq!(len, u32::MAX as usize),
            other => panic!("expected FrameTooLarge, got {other:?}"),
        }
    }

    #[test]
    fn limit_is_inclusive() {
        assert!(check_len((MAX_FRAME as u32).to_be_bytes()).is_ok());
        assert!(check_len((MAX_FRAME as u32 + 1).to_be_bytes()).is_err());
    }

    #[test]
    fn partial_frames_ask_for_more() {
        let frame = encode(&Request::Status {}).unwrap();
        for cut in 0..frame.len() {
            assert!(
                decode::<Request>(&frame[..cut]).unwrap().is_none(),
                "cut at {cut}"
            );
        }
        let (msg, used) = decode::<Request>(&frame).unwrap().unwrap();
        assert_eq!(msg, Request::Status {});
        assert_eq!(used, frame.len());
    }

    /// A value sent where another type belongs is never quoted back, whatever its type and
    /// whatever it holds; the field's expected type and the position are.
    #[test]
    fn a_mistyped_value_is_not_quoted_back() {
        for (field, value, expected) in [
            ("ttl_secs", "\"SECRETPIN77\"", "expected u64"),
            ("ttl_secs", "-123456", "expected u64"),
            ("ttl_secs", "1234.5", "expected u64"),
            ("ttl_secs", "true", "expected u64"),
            (
                "ttl_secs",
                "\"a, expected u64 SECRETPIN77\"",
                "expected u64",
            ),
            ("ttl_secs", "\"SECRET`PIN`77\"", "expected u64"),
            ("ttl_secs", "\"SECRET\\\"PIN77\"", "expected u64"),
            ("keys", "\"SECRETPIN77\"", "expected a sequence"),
            ("extend", "123456", "expected a boolean"),
        ] {
            let body = format!(r#"{{"type":"unlock","{field}":{value}}}"#);
            let Err(ProtoError::Malformed(msg)) = decode_body::<Request>(body.as_bytes()) else {
                panic!("{body} decoded");
            };
            for secret in ["SECRET", "PIN", "123456", "1234.5", "true"] {
                assert!(!msg.contains(secret), "{body}: {msg}");
            }
            assert!(msg.contains("(value hidden)"), "{body}: {msg}");
            assert!(msg.contains(expected), "{body}: {msg}");
        }
        // A PIN of the wrong type, and an unknown variant value.
        let Err(ProtoError::Malformed(msg)) =
            decode_body::<Request>(br#"{"type":"unlock","pin":123456}"#)
        else {
            panic!("decoded");
        };
        assert!(
            !msg.contains("123456") && msg.contains("integer (value hidden)"),
            "{msg}"
        );
    }

    #[test]
    fn garbage_json_is_malformed() {
        let mut frame = 5u32.to_be_bytes().to_vec();
        frame.extend_from_slice(b"{nope");
        assert!(matches!(
            decode::<Request>(&frame),
            Err(ProtoError::Malformed(_))
        ));
    }
}
