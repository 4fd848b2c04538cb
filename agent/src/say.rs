//! The agent's own log lines, to stderr, without ever panicking. `eprintln!` panics when
//! stderr is a pipe whose reader has gone (a journal that restarted, `tapsign agent 2>&1 |
//! head`): in the audit writer that would stop signing, in a connection it would drop an
//! unlock halfway. A line that cannot be written is lost; the agent goes on.

use std::fmt;
use std::io::Write;

/// Write one line to stderr (`eprintln!`'s arguments); failures are ignored.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say::line(format_args!($($arg)*))
    };
}

/// Write `args` and a newline to stderr, in one piece, ignoring failure.
pub(crate) fn line(args: fmt::Arguments<'_>) {
    let text = format!("{args}\n");
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
