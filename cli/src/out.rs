//! Output that never panics. `println!` and `eprintln!` panic when the other end of a pipe has
//! gone (`tapsign status | head -1`, `tapsign events | grep -m1 locked`); every line the CLI
//! prints goes through here instead.
//!
//! - [`outln!`] writes a line to stdout. When the reader has gone, the command stops at once
//!   and exits 0 without a word, like `yes | head -1`: nobody is left to read the rest. Any
//!   other write error (a full disk behind `> file`) fails the command, exit 1.
//! - [`errln!`] writes a line to stderr and ignores failure: a message about a problem must
//!   not become a second problem.
//! - Both show control characters (but newline and tab) and bidirectional overrides escaped:
//!   what the CLI prints can hold what a bot chose (a file name in the keystore folder, a
//!   program path, an audit line), and an escape sequence there could repaint the trader's
//!   terminal. [`jsonln!`] writes JSON, escaping the same characters the JSON way.

use std::fmt;
use std::io::{self, Write};

use crate::Failure;

/// Write one line to stdout (`println!`'s arguments); `?`-propagates a [`Failure`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out::stdout(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// Write to stdout without adding a newline (`print!`'s arguments).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::stdout(format_args!($($arg)*))?
    };
}

/// Write one line of JSON to stdout: the characters [`outln!`] escapes, as `\uXXXX`.
macro_rules! jsonln {
    ($json:expr) => {
        $crate::out::stdout_json(&$json)?
    };
}

/// Write one line to stderr (`eprintln!`'s arguments); failures are ignored.
macro_rules! errln {
    () => {
        $crate::out::stderr(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Write to stderr without adding a newline (a prompt).
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::out::stderr(format_args!($($arg)*))
    };
}

/// Write `args` to stdout and flush (a line reaches a pipe as soon as it is written).
pub fn stdout(args: fmt::Arguments<'_>) -> Result<(), Failure> {
    let raw = args.to_string();
    let text = shown(&raw);
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(stdout_failed)
}

/// Write `json` and a newline to stdout, escaping what [`stdout`] escapes the JSON way (a
/// JSON writer leaves DEL, C1 controls and bidirectional overrides as they are; they can only
/// be inside strings, where `\uXXXX` means the same).
pub fn stdout_json(json: &str) -> Result<(), Failure> {
    let mut text = json_shown(json);
    text.push('\n');
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(stdout_failed)
}

fn json_shown(json: &str) -> String {
    let mut text = String::with_capacity(json.len() + 1);
    for c in json.chars() {
        if hidden(c) {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                text.push_str(&format!("\\u{u:04x}"));
            }
        } else {
            text.push(c);
        }
    }
    text
}

/// What [`tapsign_agent::audit::Shown`] escapes, but newline and tab, which the CLI's own
/// multi-line messages use (values quoted into them are escaped whole, by `Shown`).
fn hidden(c: char) -> bool {
    c != '\n' && c != '\t' && tapsign_agent::audit::hidden(c)
}

/// `text` with [`hidden`] characters written as Rust escapes (`\u{1b}`).
pub fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hidden(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Write raw bytes to stdout (generated completions and manual pages).
pub fn stdout_bytes(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(stdout_failed)
}

/// Write `args` to stderr; a closed or broken stderr is ignored.
pub fn stderr(args: fmt::Arguments<'_>) {
    let raw = args.to_string();
    let text = shown(&raw);
    let mut err = io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

fn stdout_failed(e: io::Error) -> Failure {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Failure::reader_gone()
    } else {
        Failure::error(format!("cannot write the output: {e}"))
    }
}

#[cfg(test)]
mod tests {
    /// Red-team round 7: a file named with an escape sequence in the keystore folder, or a bot's
    /// program path, reached the trader's terminal raw through `key list`, `unlock`'s warnings
    /// and error messages.
    #[test]
    fn hidden_characters_are_escaped_and_json_stays_json() {
        let forged = "damaged: /k/\u{1b}[2J\u{1b}[HLocked\u{9b}\u{202e}x\r\n\tok";
        let shown = super::shown(forged);
        assert_eq!(
            shown,
            "damaged: /k/\\u{1b}[2J\\u{1b}[HLocked\\u{9b}\\u{202e}x\\r\n\tok"
        );
        assert!(matches!(
            super::shown("plain\n"),
            std::borrow::Cow::Borrowed(_)
        ));
        let json =
            serde_json::to_string(&serde_json::json!({ "exe": "a\u{7f}\u{9b}\u{202e}b" })).unwrap();
        let out = super::json_shown(&json);
        assert!(!out.chars().any(super::hidden), "{out:?}");
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back["exe"], "a\u{7f}\u{9b}\u{202e}b");
    }
}
