//! Time: the boot-time clock, human durations, and UTC timestamps.
//!
//! `std::time::Instant` (and so tokio's timers) reads CLOCK_MONOTONIC, which stops while the
//! machine is suspended: a "15-minute" session would survive a night asleep. Session deadlines
//! are therefore measured on CLOCK_BOOTTIME, which keeps counting through suspend.
//!
//! Timestamps (the audit log's `time`, OKX's `OK-ACCESS-TIMESTAMP`) are RFC 3339 UTC with
//! milliseconds, written here without a date crate: one fixed format, not a calendar library.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time since boot, suspended time included.
pub fn boot_now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Parse a human duration: `90s`, `15m`, `8h`, `1d`, `1h30m`, or bare seconds (`300`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("invalid duration {s:?}: write it like 90s, 15m, 8h, 1d or 1h30m");
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !num.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// Format a duration the way `parse_duration` reads it (`1h30m`, `45s`).
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, name) in [(86_400, 'd'), (3600, 'h'), (60, 'm'), (1, 's')] {
        if secs >= unit {
            out.push_str(&format!("{}{name}", secs / unit));
            secs %= unit;
        }
    }
    out
}

/// `unix_ms` (milliseconds since the Unix epoch) as `YYYY-MM-DDTHH:MM:SS.mmmZ`
/// (`2020-12-08T09:08:57.715Z`).
pub fn utc_ms(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        unix_ms % 1000
    )
}

/// `secs` (seconds since the Unix epoch) as [`utc_ms`] writes it, for a time read from a
/// file or a log line (a credential's `created`): any value is written, even one past what
/// `SystemTime` holds. Anyone who can write the log can append a line with `u64::MAX` there,
/// and the keystore's check and `tapsign audit` must say so, not panic.
pub fn utc_secs(secs: u64) -> String {
    utc_ms(secs.saturating_mul(1000))
}

/// `t` as [`utc_ms`] writes it. A time before 1970 (a badly set clock) is written as the
/// epoch: the audit log's order is carried by `seq`, not by the time.
pub fn rfc3339_utc_ms(t: SystemTime) -> String {
    let ms = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    utc_ms(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// `secs` (seconds since the Unix epoch) as `YYYY-MM-DDTHH:MM:SSZ`, without a fraction: the
/// form of Kraken's own `deadline` example (`2021-04-01T00:18:45Z`).
pub fn utc_whole_secs(secs: u64) -> String {
    let ms = utc_secs(secs);
    // `utc_ms` always ends in `.mmmZ`.
    format!("{}Z", &ms[..ms.len() - 5])
}

/// Read an RFC 3339 time in UTC, strictly: `YYYY-MM-DDTHH:MM:SS` with an optional fraction of
/// 1 to 9 digits, then `Z`, upper case, as nanoseconds since the Unix epoch. `None` for any
/// other form: a numeric offset (`+00:00`), a lower-case `t` or `z`, a space for the `T`, a
/// leap second, a date that does not exist, or a time before 1970. A bot's time the agent
/// keeps must mean one instant to the agent and to the exchange, so nothing is guessed.
pub fn parse_utc(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u64> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0u64, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
        })
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let mut nanos = 0u64;
    let mut i = 19;
    if at(i, b'.') {
        let len = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&len) {
            return None;
        }
        nanos = num(i + 1, len)? * 10u64.pow(9 - len as u32);
        i += 1 + len;
    }
    if !(at(i, b'Z') && b.len() == i + 1) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    // A date that does not exist (30 February, month 13, day 0) counts on to another one, which
    // [`civil_from_days`], the calendar the agent writes its times with, does not give back.
    let (y, mo, d) = (y as i64, mo as u32, d as u32);
    let days = days_from_civil(y, mo, d);
    if civil_from_days(days) != (y, mo, d) {
        return None;
    }
    // Before 1970, `days` is negative.
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + mi * 60 + sec;
    Some(u128::from(secs) * 1_000_000_000 + u128::from(nanos))
}

/// A proleptic Gregorian (year, month, day) to days since 1970-01-01: the inverse of
/// [`civil_from_days`] (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = y - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // [0, 399]
    let mp = i64::from((m + 9) % 12); // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
///
/// Howard Hinnant's `civil_from_days`: shift the year to start on March 1st so the leap day is
/// the last day of the shifted year, then split into 400-year eras of 146 097 days.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of (March-based) year, [0, 365]
    let mp = (5 * doy + 2) / 153; // March = 0, [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, millis: u64) -> String {
        rfc3339_utc_ms(UNIX_EPOCH + Duration::from_millis(secs * 1000 + millis))
    }

    #[test]
    fn known_instants() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 0), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(1_709_251_199, 999), "2024-02-29T23:59:59.999Z");
        assert_eq!(at(1_795_428_000, 7), "2026-11-23T10:00:00.007Z");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000Z");
    }

    #[test]
    fn any_number_of_seconds_is_written() {
        assert_eq!(utc_secs(1_795_428_000), "2026-11-23T10:00:00.000Z");
        assert!(utc_secs(u64::MAX).ends_with('Z'));
    }

    #[test]
    fn okx_examples() {
        assert_eq!(utc_ms(1_607_418_537_715), "2020-12-08T09:08:57.715Z");
        assert_eq!(utc_ms(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn before_the_epoch_is_clamped() {
        let t = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(rfc3339_utc_ms(t), "1970-01-01T00:00:00.000Z");
    }

    fn is_leap(y: i64) -> bool {
        (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
    }

    /// Walk day by day with the plain calendar rules and compare every date up to 2400
    /// (covers 2100's non-leap and 2000's and 2400's leap exceptions).
    #[test]
    fn matches_a_day_by_day_walk() {
        let (mut y, mut m, mut d) = (1970i64, 1u32, 1u32);
        for z in 0..160_000i64 {
            assert_eq!(civil_from_days(z), (y, m, d), "day {z}");
            let len = match m {
                2 if is_leap(y) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn days_from_civil_inverts_civil_from_days() {
        for z in (0..160_000i64).step_by(7) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z, "day {z}");
        }
    }

    #[test]
    fn whole_seconds_are_written_without_a_fraction() {
        assert_eq!(utc_whole_secs(1_617_236_325), "2021-04-01T00:18:45Z");
        assert_eq!(utc_whole_secs(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn strict_utc_times_parse_and_nothing_else_does() {
        let s = |secs: u128| secs * 1_000_000_000;
        assert_eq!(parse_utc("2021-04-01T00:18:45Z"), Some(s(1_617_236_325)));
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_utc("2021-04-01T00:18:45.5Z"),
            Some(s(1_617_236_325) + 500_000_000)
        );
        assert_eq!(
            parse_utc("2021-04-01T00:18:45.000000001Z"),
            Some(s(1_617_236_325) + 1)
        );
        assert_eq!(parse_utc("2024-02-29T23:59:59Z"), Some(s(1_709_251_199)));
        assert_eq!(parse_utc("2000-02-29T00:00:00Z"), Some(s(951_782_400)));
        for t in 0..200u64 {
            let secs = 1_600_000_000 + t * 7_919_993;
            assert_eq!(parse_utc(&utc_whole_secs(secs)), Some(s(secs.into())));
        }
        for bad in [
            "",
            "2021-04-01T00:18:45",
            "2021-04-01T00:18:45z",
            "2021-04-01t00:18:45Z",
            "2021-04-01 00:18:45Z",
            "2021-04-01T00:18:45+00:00",
            "2021-04-01T00:18:45.Z",
            "2021-04-01T00:18:45.1234567890Z",
            "2021-04-01T00:18:45ZZ",
            "2021-04-01T00:18:60Z",
            "2021-04-01T24:00:00Z",
            "2021-02-29T00:00:00Z",
            "2021-13-01T00:00:00Z",
            "2021-04-00T00:00:00Z",
            "2021-04-31T00:00:00Z",
            "2021-00-10T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "+2021-04-01T00:18:45Z",
            "2021-4-01T00:18:45Z",
            "２021-04-01T00:18:45Z",
            "1617236325",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("300").unwrap(), Duration::from_secs(300));
        for bad in ["", "h", "5x", "1h5", "99999999999999999999d", "-5s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn durations_format_round_trip() {
        for s in [0, 1, 59, 60, 3599, 3600, 5400, 86_400, 90_061] {
            let d = Duration::from_secs(s);
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
    }

    #[test]
    fn boot_clock_moves_forward() {
        let a = boot_now();
        std::thread::sleep(Duration::from_millis(5));
        assert!(boot_now() > a);
    }
}
