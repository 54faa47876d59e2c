//! SigV4 timestamps (`20150830T123600Z`) and scope dates (`20150830`), as Unix seconds.
//!
//! Hand-rolled civil-date arithmetic keeps the crate free of a time library and of any clock.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

const SECS_PER_DAY: i64 = 86_400;

/// A point in time, to the second, that displays in the SigV4 timestamp format
/// (`20150830T123600Z`); used in error messages and convertible to [`SystemTime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AmzTime(pub(crate) i64);

impl From<AmzTime> for SystemTime {
    fn from(t: AmzTime) -> Self {
        let magnitude = std::time::Duration::from_secs(t.0.unsigned_abs());
        if t.0 >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }
}

impl fmt::Display for AmzTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(SECS_PER_DAY);
        let secs = self.0.rem_euclid(SECS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// Unix seconds of `now`, saturating far outside any usable range.
pub(crate) fn unix_secs(now: SystemTime) -> i64 {
    match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Parses `YYYYMMDD` into days since the Unix epoch; rejects impossible dates.
fn parse_scope_date(s: &[u8]) -> Option<i64> {
    if s.len() != 8 {
        return None;
    }
    let y = digits(&s[0..4])?;
    let m = digits(&s[4..6])?;
    let d = digits(&s[6..8])?;
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// Parses `YYYYMMDDTHHMMSSZ` into Unix seconds; rejects impossible times (and leap seconds).
pub(crate) fn parse_amz_date(s: &[u8]) -> Option<i64> {
    if s.len() != 16 || s[8] != b'T' || s[15] != b'Z' {
        return None;
    }
    let days = parse_scope_date(&s[0..8])?;
    let h = digits(&s[9..11])?;
    let min = digits(&s[11..13])?;
    let sec = digits(&s[13..15])?;
    if h > 23 || min > 59 || sec > 59 {
        return None;
    }
    Some(days * SECS_PER_DAY + h * 3600 + min * 60 + sec)
}

fn digits(s: &[u8]) -> Option<i64> {
    s.iter().try_fold(0i64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian calendar).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parses_and_formats_round_trip() {
        let t = parse_amz_date(b"20150830T123600Z").unwrap();
        assert_eq!(t, 1_440_938_160);
        assert_eq!(AmzTime(t).to_string(), "20150830T123600Z");
        assert_eq!(parse_scope_date(b"19700101"), Some(0));
        assert_eq!(AmzTime(0).to_string(), "19700101T000000Z");
        assert_eq!(AmzTime(-1).to_string(), "19691231T235959Z");
        let leap = parse_amz_date(b"20240229T235959Z").unwrap();
        assert_eq!(AmzTime(leap).to_string(), "20240229T235959Z");
        assert_eq!(AmzTime(leap + 1).to_string(), "20240301T000000Z");
    }

    #[test]
    fn rejects_impossible_dates() {
        for bad in [
            &b"20150830T123600"[..],
            b"20150830 123600Z",
            b"20150830T123600z",
            b"20150230T123600Z",
            b"20230229T000000Z",
            b"21000229T000000Z",
            b"20151330T123600Z",
            b"20150800T123600Z",
            b"20150830T243600Z",
            b"20150830T126000Z",
            b"20150830T123660Z",
            b"2015083OT123600Z",
            b"+0150830T123600Z",
            b"",
        ] {
            assert_eq!(
                parse_amz_date(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse_scope_date(b"20000229"), Some(11_016));
        assert_eq!(parse_scope_date(b"2015083"), None);
    }

    #[test]
    fn system_time_conversions() {
        let t = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        assert_eq!(unix_secs(t), 1_440_938_160);
        assert_eq!(SystemTime::from(AmzTime(1_440_938_160)), t);
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_secs(5)), -5);
        assert_eq!(
            SystemTime::from(AmzTime(-5)),
            UNIX_EPOCH - Duration::from_secs(5)
        );
    }
}
