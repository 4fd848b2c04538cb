//! The agent's own log lines, to stderr, without ever panicking or waiting on it.
//!
//! `eprintln!` panics when stderr is a pipe whose reader has gone (a journal that restarted,
//! `tapsign agent 2>&1 | head`): in the audit writer that would stop signing, in a connection
//! it would drop an unlock halfway. A line that cannot be written is lost; the agent goes on.
//!
//! Nor may a line wait on stderr: a reader that stops reading (a terminal's window stopped,
//! the reader of a pipe sent SIGSTOP, by any process of the user) makes a plain write wait
//! for as long as it likes, and the writer waits holding whatever it holds: the session's
//! lock, so `tapsign lock` could not lock and the session's secrets stayed in memory
//! (red-team round 18). Once the agent serves ([`to_thread`]), a line goes to a thread of
//! its own over a bounded queue; a full queue drops lines, counted, and the thread says how
//! many once it writes again. Before that, and in the CLI, a line is written at once.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Write one line to stderr (`eprintln!`'s arguments); failures are ignored.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say::line(format_args!($($arg)*))
    };
}

/// Lines queued for the thread at most: a burst of the agent's log (a lock with its warnings)
/// is tens of lines.
const QUEUED_MAX: usize = 1024;

/// The thread's queue, once the agent serves.
static QUEUE: OnceLock<Arc<Queue>> = OnceLock::new();

/// Write `args` and a newline to stderr, in one piece, ignoring failure; through the queue
/// once there is one.
pub(crate) fn line(args: fmt::Arguments<'_>) {
    let text = format!("{args}\n");
    match QUEUE.get() {
        Some(q) => q.send(text),
        None => write_now(&mut std::io::stderr().lock(), &text),
    }
}

fn write_now(to: &mut dyn Write, text: &str) {
    let _ = to.write_all(text.as_bytes());
}

/// From now on, lines go to a thread of their own (the agent, as it starts serving). A thread
/// that cannot start leaves lines written at once.
pub fn to_thread() {
    if QUEUE.get().is_some() {
        return;
    }
    if let Some(q) = Queue::start(Box::new(std::io::stderr())) {
        let _ = QUEUE.set(q);
    }
}

/// Wait, at most `wait`, until the lines said so far are written (the agent, as it stops:
/// its last lines are not lost to the process ending).
pub fn flush(wait: Duration) {
    if let Some(q) = QUEUE.get() {
        q.flush(wait);
    }
}

/// A bounded queue of lines and the thread that writes them.
pub(crate) struct Queue {
    lines: SyncSender<String>,
    /// Lines dropped since the thread last said so.
    dropped: AtomicU64,
    /// Lines queued so far, and (under the lock) lines written or dropped so far.
    sent: AtomicU64,
    done: Mutex<u64>,
    written: Condvar,
}

impl Queue {
    /// Start the thread, writing to `to`; none if it cannot start.
    pub(crate) fn start(mut to: Box<dyn Write + Send>) -> Option<Arc<Queue>> {
        let (lines, queued) = sync_channel::<String>(QUEUED_MAX);
        let q = Arc::new(Queue {
            lines,
            dropped: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            done: Mutex::new(0),
            written: Condvar::new(),
        });
        let mine = Arc::clone(&q);
        std::thread::Builder::new()
            .name("tapsign-say".into())
            .spawn(move || {
                for text in queued {
                    let dropped = mine.dropped.swap(0, Ordering::SeqCst);
                    if dropped > 0 {
                        write_now(
                            &mut to,
                            &format!(
                                "tapsign agent: {dropped} line(s) of this log were dropped: its stderr was not read\n"
                            ),
                        );
                    }
                    write_now(&mut to, &text);
                    mine.count_done();
                }
            })
            .ok()?;
        Some(q)
    }

    /// Queue `text`; dropped, and counted, when the queue is full (or its thread gone, which
    /// it cannot be but for a panic: writing here instead could wait on stderr again).
    pub(crate) fn send(&self, text: String) {
        self.sent.fetch_add(1, Ordering::SeqCst);
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.lines.try_send(text)
        {
            self.dropped.fetch_add(1, Ordering::SeqCst);
            self.count_done();
        }
    }

    /// One more line written or dropped.
    fn count_done(&self) {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        *done += 1;
        self.written.notify_all();
    }

    /// Wait, at most `wait`, until every line queued before this call is written or dropped.
    /// True if they all were.
    pub(crate) fn flush(&self, wait: Duration) -> bool {
        let target = self.sent.load(Ordering::SeqCst);
        let until = Instant::now() + wait;
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        while *done < target {
            let Some(left) = until.checked_duration_since(Instant::now()) else {
                return false;
            };
            done = match self.written.wait_timeout(done, left) {
                Ok((d, _)) => d,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A stderr whose reader stopped: every write waits until the test lets it through.
    struct Stopped {
        gate: Arc<(Mutex<bool>, Condvar)>,
        out: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Stopped {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (open, cv) = &*self.gate;
            let mut open = open.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            self.out.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Red-team round 18: a line said while stderr is not read returns at once (the queue
    /// takes it, or drops it when full), and the lines written once stderr is read again say
    /// how many were dropped.
    #[test]
    fn a_line_never_waits_on_a_stderr_nobody_reads() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let out = Arc::new(Mutex::new(Vec::new()));
        let q = Queue::start(Box::new(Stopped {
            gate: Arc::clone(&gate),
            out: Arc::clone(&out),
        }))
        .unwrap();
        // More lines than the queue holds, from another thread: if a line waited on the
        // stopped stderr, this thread would never finish.
        let (finished, said) = mpsc::channel();
        let sender = Arc::clone(&q);
        std::thread::spawn(move || {
            for i in 0..QUEUED_MAX * 3 {
                sender.send(format!("line {i}\n"));
            }
            finished.send(()).unwrap();
        });
        said.recv_timeout(Duration::from_secs(60))
            .expect("saying lines waited on a stderr nobody reads");
        assert!(
            !q.flush(Duration::from_millis(10)),
            "nothing was written yet"
        );
        // Read again: what was queued is written, then the count of what was dropped.
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        assert!(q.flush(Duration::from_secs(60)));
        q.send("after\n".into());
        assert!(q.flush(Duration::from_secs(60)));
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        assert!(text.contains("line 0\n"), "{text:.80}");
        assert!(
            text.contains("line(s) of this log were dropped"),
            "{text:.40}"
        );
        assert!(text.ends_with("after\n"));
        // Not every line got through: the queue is bounded.
        let through = text.lines().filter(|l| l.starts_with("line ")).count();
        assert!(through < QUEUED_MAX * 3, "{through}");
    }
}
