//! Repeated refusals: a bot that sends the same refused request in a loop (a retry without a
//! back-off against a locked agent, an order the wall refuses) would otherwise write a line
//! per attempt, about a megabyte a second, until the disk is full. The writer counts a refusal
//! that is like one whose line went in less than [`WINDOW`] before (every field equal: who
//! asked, what, why) and writes the count with the next line of it: at most one line a second
//! for each refusal, and no refusal left out of the count. journald's rate limit and auditd's
//! `rate_limit` answer the same flood; they drop what is over the limit and say how much,
//! where this keeps each count with the refusal it belongs to (docs/audit.md, "Repeated
//! refusals").

use std::time::{Duration, Instant, SystemTime};

use super::AuditEvent;

/// A refusal like one written less than this before is counted, not written.
pub(super) const WINDOW: Duration = Duration::from_secs(1);

/// The most refusals followed at once. Past it the one written longest ago is let go, its
/// count written first: a bot cycling through more refusals than this gets each written, and
/// could as well fill the disk any other way (docs/audit.md).
pub(super) const FOLLOWED: usize = 64;

/// The refusals written in the last [`WINDOW`], with what was counted since.
#[derive(Default)]
pub(super) struct Repeats {
    followed: Vec<Followed>,
}

struct Followed {
    /// What refusals like it have in common: the refusal as its line reads (cut to the bounds
    /// of a line), `repeated` 0, numbers in its reason aside ([`alike`]).
    like: AuditEvent,
    /// The last refusal counted (or the one written), as its line reads.
    event: AuditEvent,
    /// When its last line was handed to the writer.
    written: Instant,
    /// Refusals like it since then, not written.
    counted: u64,
    /// The time of the last of them.
    last: SystemTime,
}

/// `event` with the numbers of its reason left out: a refusal that quotes a clock's distance
/// (Binance's `timestamp` more than so many milliseconds off) differs in it at every retry,
/// and a bot looping on one wrote a line each, about 0.9 MB/s (red-team round 20's recheck).
/// The line written for a count is the last refusal's, numbers and all.
fn alike(event: &AuditEvent) -> AuditEvent {
    let mut like = event.clone();
    if let AuditEvent::Refusal { reason, .. } | AuditEvent::UnlockRefused { reason, .. } = &mut like
    {
        let mut masked = String::with_capacity(reason.len());
        let mut in_number = false;
        for c in reason.chars() {
            match (c.is_ascii_digit(), in_number) {
                (true, true) => {}
                (true, false) => {
                    masked.push('#');
                    in_number = true;
                }
                (false, _) => {
                    masked.push(c);
                    in_number = false;
                }
            }
        }
        *reason = masked;
    }
    like
}

/// A line for refusals counted and not yet written: the last of them, at its own time, with
/// the count of the others.
pub(super) type Late = (AuditEvent, SystemTime);

impl Repeats {
    /// A refusal at `now`, about to be written. `None` when it is counted instead (a line like
    /// it went in less than [`WINDOW`] before); otherwise what to write: the lines of counts let
    /// go to make room (oldest first), then the refusal itself, carrying the count of those like
    /// it that were not written since its last line.
    pub(super) fn take(
        &mut self,
        event: &AuditEvent,
        time: SystemTime,
        now: Instant,
    ) -> Option<(Vec<Late>, AuditEvent)> {
        let event = event.loggable().with_repeated(0);
        let like = alike(&event);
        if let Some(f) = self.followed.iter_mut().find(|f| f.like == like) {
            if now.saturating_duration_since(f.written) < WINDOW {
                f.counted = f.counted.saturating_add(1);
                f.last = time;
                f.event = event;
                return None;
            }
            f.event = event.clone();
            // Its window passed before its count was written (the writer was busy): the count
            // goes with this line.
            let counted = std::mem::take(&mut f.counted);
            f.written = now;
            return Some((Vec::new(), event.with_repeated(counted)));
        }
        let mut late = Vec::new();
        if self.followed.len() >= FOLLOWED {
            // Let go of the one written longest ago.
            if let Some(i) = (0..self.followed.len()).min_by_key(|&i| self.followed[i].written) {
                late.extend(Self::count_of(self.followed.swap_remove(i)));
            }
        }
        self.followed.push(Followed {
            like,
            event: event.clone(),
            written: now,
            counted: 0,
            last: time,
        });
        Some((late, event))
    }

    /// The lines of the counts whose window has passed by `now`; refusals whose window passed
    /// with nothing counted are let go.
    pub(super) fn due(&mut self, now: Instant) -> Vec<Late> {
        let mut late = Vec::new();
        self.followed.retain_mut(|f| {
            if now.saturating_duration_since(f.written) < WINDOW {
                return true;
            }
            if f.counted == 0 {
                return false;
            }
            let counted = std::mem::take(&mut f.counted);
            late.push((f.event.clone().with_repeated(counted - 1), f.last));
            // Its line goes in now: what comes like it in the next window is counted again.
            f.written = now;
            true
        });
        late.sort_by_key(|(_, time)| *time);
        late
    }

    /// The lines of every count not yet written (the writer is closing).
    pub(super) fn drain(&mut self) -> Vec<Late> {
        let mut late: Vec<_> = self.followed.drain(..).filter_map(Self::count_of).collect();
        late.sort_by_key(|(_, time)| *time);
        late
    }

    /// When the next count falls due, if any is waiting.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.followed
            .iter()
            .filter(|f| f.counted > 0)
            .map(|f| f.written + WINDOW)
            .min()
    }

    /// A line for `f`'s count, if it counted any: the last refusal counted, at its time,
    /// standing for the others too.
    fn count_of(f: Followed) -> Option<Late> {
        (f.counted > 0).then(|| (f.event.with_repeated(f.counted - 1), f.last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapsign_proto::ErrorCode;

    fn refusal(path: &str) -> AuditEvent {
        AuditEvent::Refusal {
            key: "k".into(),
            kind: Default::default(),
            method: "POST".into(),
            path: path.into(),
            code: ErrorCode::Locked,
            reason: "the agent is locked".into(),
            pid: 7,
            exe: "/usr/bin/bot".into(),
            repeated: 0,
        }
    }

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn stamp(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }

    /// A loop of the same refusal writes its first line, counts the rest of the second, and
    /// writes the count once the second is over: every refusal is accounted for, one line a
    /// second.
    #[test]
    fn the_same_refusal_in_a_loop_is_counted_and_its_count_written_once_a_second() {
        let (t0, mut r) = (Instant::now(), Repeats::default());
        let e = refusal("/api/v3/order");
        let (late, first) = r.take(&e, stamp(0), at(t0, 0)).unwrap();
        assert!(late.is_empty());
        assert_eq!(first, e);
        for ms in 1..=999 {
            assert!(r.take(&e, stamp(ms), at(t0, ms)).is_none(), "{ms} ms");
        }
        assert!(r.due(at(t0, 999)).is_empty());
        assert_eq!(r.next_due(), Some(at(t0, 1000)));
        let due = r.due(at(t0, 1000));
        // The last refusal counted, at its own time, standing for the 998 before it.
        assert_eq!(due, vec![(e.clone().with_repeated(998), stamp(999))]);
        assert_eq!(r.next_due(), None);
        // The next second counts again from its count's line.
        assert!(r.take(&e, stamp(1001), at(t0, 1001)).is_none());
        assert_eq!(r.drain(), vec![(e.clone(), stamp(1001))]);
        assert!(r.drain().is_empty());
    }

    /// Refusals that differ in anything are written each: only the same refusal is counted.
    #[test]
    fn refusals_that_differ_in_any_field_are_each_written() {
        let (t0, mut r) = (Instant::now(), Repeats::default());
        let a = refusal("/api/v3/order");
        let b = refusal("/sapi/v1/capital/withdraw/apply");
        let mut c = a.clone();
        if let AuditEvent::Refusal { pid, .. } = &mut c {
            *pid = 8;
        }
        for e in [&a, &b, &c] {
            assert!(r.take(e, stamp(0), at(t0, 0)).is_some());
        }
        assert!(r.take(&a, stamp(1), at(t0, 1)).is_none());
        assert!(r.take(&b, stamp(1), at(t0, 1)).is_none());
        assert_eq!(r.drain().len(), 2);
    }

    /// A refusal whose window passed before its count was written carries the count itself.
    #[test]
    fn a_count_overdue_goes_with_the_next_line_of_its_refusal() {
        let (t0, mut r) = (Instant::now(), Repeats::default());
        let e = refusal("/api/v3/order");
        r.take(&e, stamp(0), at(t0, 0)).unwrap();
        for ms in 1..=5 {
            assert!(r.take(&e, stamp(ms), at(t0, ms)).is_none());
        }
        let (late, line) = r.take(&e, stamp(1500), at(t0, 1500)).unwrap();
        assert!(late.is_empty());
        assert_eq!(line.repeated(), 5);
        assert!(r.drain().is_empty());
    }

    /// Past [`FOLLOWED`] refusals, the one written longest ago is let go with its count
    /// written: nothing counted is lost, and what is followed stays bounded.
    #[test]
    fn past_the_refusals_followed_the_oldest_count_is_written_and_let_go() {
        let (t0, mut r) = (Instant::now(), Repeats::default());
        let first = refusal("/0");
        r.take(&first, stamp(0), at(t0, 0)).unwrap();
        assert!(r.take(&first, stamp(1), at(t0, 1)).is_none());
        for i in 1..FOLLOWED {
            let (late, _) = r
                .take(&refusal(&format!("/{i}")), stamp(2), at(t0, 2))
                .unwrap();
            assert!(late.is_empty());
        }
        let (late, _) = r.take(&refusal("/new"), stamp(3), at(t0, 3)).unwrap();
        assert_eq!(late, vec![(first.clone(), stamp(1))]);
        assert_eq!(r.followed.len(), FOLLOWED);
        // `/0` was let go: it is written again.
        assert!(r.take(&first, stamp(4), at(t0, 4)).is_some());
    }

    /// A refusal that quotes a number that changes at every retry (a clock's distance) is
    /// counted as the same refusal; its count's line is the last one's, number and all.
    #[test]
    fn refusals_differing_only_in_a_number_of_their_reason_are_counted_alike() {
        let (t0, mut r) = (Instant::now(), Repeats::default());
        let skewed = |ms: u64| {
            let mut e = refusal("/api/v3/order");
            if let AuditEvent::Refusal { reason, .. } = &mut e {
                *reason = format!("timestamp is {ms} ms off this machine's clock");
            }
            e
        };
        r.take(&skewed(61_000), stamp(0), at(t0, 0)).unwrap();
        for ms in 1..=9 {
            assert!(
                r.take(&skewed(61_000 + ms), stamp(ms), at(t0, ms))
                    .is_none()
            );
        }
        assert_eq!(r.drain(), vec![(skewed(61_009).with_repeated(8), stamp(9))]);
        // Another reason is another refusal.
        r.take(&skewed(1), stamp(20), at(t0, 20)).unwrap();
        assert!(
            r.take(&refusal("/api/v3/order"), stamp(21), at(t0, 21))
                .is_some()
        );
    }

    /// A refusal is compared as its line reads: one whose key name differs only past the cut
    /// of a line is the same line, counted.
    #[test]
    fn refusals_are_compared_as_their_lines_read() {
        let (t0, mut r) = (Instant::now(), Repeats::default());
        let long = |tail: &str| {
            let mut e = refusal("/api/v3/order");
            if let AuditEvent::Refusal { key, .. } = &mut e {
                *key = format!("{}{tail}", "k".repeat(400));
            }
            e
        };
        r.take(&long("a"), stamp(0), at(t0, 0)).unwrap();
        assert!(r.take(&long("b"), stamp(1), at(t0, 1)).is_none());
    }
}
