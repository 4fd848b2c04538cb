//! Output that never panics. `println!` and `eprintln!` panic when the other end of a pipe has
//! gone (`tapsign status | head -1`, `tapsign events | grep -m1 locked`); every line the CLI
//! prints goes through here instead.
//!
//! - [`outln!`] writes a line to stdout. When the reader has gone, the command stops at once
//!   and exits 0 without a word, like `yes | head -1`: nobody is left to read the rest. Any
//!   other write error (a full disk behind `> file`) fails the command, exit 1.
//! - [`errln!`] writes a line to stderr and ignores failure: a message about a problem must
//!   not become a second problem.

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
    let mut out = io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.flush())
        .map_err(stdout_failed)
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
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.flush());
}

fn stdout_failed(e: io::Error) -> Failure {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Failure::reader_gone()
    } else {
        Failure::error(format!("cannot write the output: {e}"))
    }
}
