//! Reading secrets: a no-echo prompt on a terminal, one field per line otherwise. Never argv.
//!
//! Input goes from file descriptor 0 straight into one fixed buffer in locked memory
//! ([`LockedBuf`]), with no `std::io::Stdin` buffer in between, and each field into a string
//! sized up front: nothing grows, so no reallocation leaves a copy of what was typed behind.
//! Bytes are wiped from the buffer as soon as they are handed on, and the buffer when it is
//! dropped. The commands that read secrets harden the process first (`harden`).

use std::io::{self, BufRead, Read};
use std::os::fd::AsFd;

use rustix::termios::{LocalModes, OptionalActions, isatty, tcgetattr, tcsetattr};
use tapsign_agent::credential::Exchange;
use tapsign_agent::harden::LockedBuf;
use tapsign_agent::secret::SecretString;
use zeroize::{Zeroize, Zeroizing};

use crate::Failure;

/// The input buffer: a PEM private key with its lines fits many times over.
const INPUT_BYTES: usize = 16 * 1024;
/// The longest one-line field (a PIN, a management key, a passphrase).
const FIELD_BYTES: usize = 1024;

/// Standard input (or, in tests, a pipe), read without any buffer but this one.
pub struct SecretInput {
    source: Box<dyn AsFd>,
    buf: LockedBuf,
    start: usize,
    end: usize,
}

impl SecretInput {
    pub fn new() -> Self {
        // Only its descriptor is used: `Stdin`'s own buffer is never filled.
        SecretInput::from_fd(Box::new(io::stdin()))
    }

    fn from_fd(source: Box<dyn AsFd>) -> Self {
        SecretInput {
            source,
            buf: LockedBuf::zeroed(INPUT_BYTES),
            start: 0,
            end: 0,
        }
    }
}

impl BufRead for SecretInput {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            // A terminal in canonical mode hands over one line per read; a pipe what it has.
            let n = loop {
                match rustix::io::read(self.source.as_fd(), self.buf.as_mut_slice()) {
                    Ok(n) => break n,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            self.end = n;
        }
        Ok(&self.buf.as_slice()[self.start..self.end])
    }

    fn consume(&mut self, amt: usize) {
        let to = (self.start + amt).min(self.end);
        // Handed on: wipe it here at once rather than when the buffer goes.
        self.buf.as_mut_slice()[self.start..to].zeroize();
        self.start = to;
    }
}

impl Read for SecretInput {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// Echo off on a terminal until dropped.
struct NoEcho {
    saved: Option<rustix::termios::Termios>,
}

impl NoEcho {
    fn new(tty: bool) -> NoEcho {
        let stdin = rustix::stdio::stdin();
        let saved = if tty { tcgetattr(stdin).ok() } else { None };
        if let Some(mut t) = saved.clone() {
            t.local_modes.remove(LocalModes::ECHO);
            let _ = tcsetattr(stdin, OptionalActions::Now, &t);
        }
        NoEcho { saved }
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = tcsetattr(rustix::stdio::stdin(), OptionalActions::Now, t);
        }
    }
}

/// Reads secret fields from stdin.
///
/// One per command, made once and handed to every step that reads: from a pipe, the first
/// read takes in every line there is, and a second reader would find stdin at its end with
/// the next fields in the first one's buffer (red-team round 22: the second PIN of a
/// rotation, the one for the FIDO2 key that receives the new vault key, was never read).
pub struct SecretReader {
    tty: bool,
    input: SecretInput,
}

/// Whether this process has made its reader of stdin ([`SecretReader::new`]).
static MADE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl SecretReader {
    /// The command's reader of stdin. Made twice, the second would lose what the first read
    /// ahead: debug builds (the tests') stop there.
    pub fn new() -> Self {
        let again = MADE.swap(true, std::sync::atomic::Ordering::Relaxed);
        debug_assert!(
            !again,
            "a second reader of stdin: hand the command's one reader on instead"
        );
        SecretReader {
            tty: isatty(rustix::stdio::stdin()),
            input: SecretInput::new(),
        }
    }

    /// Read one field: prompts without echo on a terminal, else takes the next line.
    pub fn field(&mut self, label: &str) -> Result<SecretString, Failure> {
        match self.read_field(label, false)? {
            Some(value) => Ok(value),
            None => Err(Failure::error(format!("the {label} is empty"))),
        }
    }

    /// [`SecretReader::field`], where an empty line (or none) is an answer: `None`.
    pub fn optional_field(&mut self, label: &str) -> Result<Option<SecretString>, Failure> {
        self.read_field(label, true)
    }

    fn read_field(&mut self, label: &str, optional: bool) -> Result<Option<SecretString>, Failure> {
        let mut line = Zeroizing::new(String::with_capacity(FIELD_BYTES + 1));
        let read = {
            let _echo = NoEcho::new(self.tty);
            if self.tty {
                err!("{label}: ");
            }
            let r = (&mut self.input)
                .take(FIELD_BYTES as u64)
                .read_line(&mut line);
            if self.tty {
                errln!();
            }
            r
        };
        let from = if self.tty { "" } else { " from stdin" };
        read.map_err(|e| Failure::error(format!("cannot read the {label}{from}: {e}")))?;
        if line.len() >= FIELD_BYTES && !line.ends_with('\n') {
            return Err(Failure::error(format!(
                "the {label} is longer than {FIELD_BYTES} bytes: that is not a {label}"
            )));
        }
        let value = line.trim_end_matches(['\n', '\r']);
        if optional && value.trim().is_empty() {
            return Ok(None);
        }
        if value.trim().is_empty() {
            let how = if self.tty {
                "type it at the prompt"
            } else {
                "give one field per line on stdin"
            };
            return Err(Failure::error(format!("the {label} is empty: {how}")));
        }
        Ok(Some(SecretString::from_str_copy(value)))
    }

    /// Read a credential's fields for `exchange` (API key, secret, then any passphrase), one
    /// per line; a PEM key may span lines. On a terminal the input is not echoed.
    pub fn credential(&mut self, exchange: Exchange) -> Result<Vec<SecretString>, Failure> {
        if self.tty {
            errln!(
                "Enter the {exchange} credential, one field per line (nothing is shown): {}.",
                exchange.fields().join(", then ")
            );
        }
        let fields = {
            let _echo = NoEcho::new(self.tty);
            exchange.read_fields(&mut self.input)
        };
        fields.map_err(|e| {
            let how = if self.tty {
                "type each field at the prompt"
            } else {
                "give one field per line on stdin"
            };
            Failure::error(format!("{e} ({how})"))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A reader over a pipe that holds `input` (the write end closed: end of input).
    fn reader(input: &[u8]) -> SecretReader {
        use std::io::Write;
        let (r, mut w) = std::io::pipe().unwrap();
        w.write_all(input).unwrap();
        drop(w);
        SecretReader {
            tty: false,
            input: SecretInput::from_fd(Box::new(r)),
        }
    }

    #[test]
    fn fields_come_through_and_the_buffer_is_wiped_behind_them() {
        let mut r = reader(b"the-api-key\nthe-secret\n123456\n");
        let fields = r.credential(Exchange::Binance).unwrap();
        assert_eq!(fields[0].expose(), "the-api-key");
        assert_eq!(fields[1].expose(), "the-secret");
        assert_eq!(r.field("PIN").unwrap().expose(), "123456");
        // Everything read was handed on, and nothing of it is left in the buffer.
        assert_eq!(r.input.start, r.input.end);
        assert!(r.input.buf.as_slice().iter().all(|&b| b == 0));
    }

    #[test]
    fn a_pem_key_spans_lines_in_the_same_buffer() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n";
        let mut r = reader(format!("key-name\n{pem}").as_bytes());
        let fields = r.credential(Exchange::Coinbase).unwrap();
        assert_eq!(fields[1].expose(), pem);
    }

    #[test]
    fn an_overlong_or_empty_field_is_refused_with_a_reason() {
        let long = "9".repeat(FIELD_BYTES + 10) + "\n";
        let e = reader(long.as_bytes()).field("PIN").err().unwrap();
        assert!(e.message.contains("longer than"), "{}", e.message);
        let e = reader(b"\n").field("PIN").err().unwrap();
        assert!(e.message.contains("is empty"), "{}", e.message);
        let e = reader(b"only-one\n")
            .credential(Exchange::Upbit)
            .err()
            .unwrap();
        assert!(e.message.contains("input ended"), "{}", e.message);
    }
}
