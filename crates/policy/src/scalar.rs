//! Typed condition values: numbers, dates, booleans, IP addresses and base64 binaries. Each
//! parser serves both sides: policy values at parse time, request values at evaluation.

use std::cmp::Ordering;
use std::net::IpAddr;

use base64::Engine as _;
use ipnet::IpNet;
use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;

/// An exact decimal: `[+-]digits[.digits]`. Compared digit by digit, so large integers and
/// long fractions never lose precision the way a float would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Decimal {
    negative: bool,
    /// Without leading zeros.
    integer: Box<str>,
    /// Without trailing zeros.
    fraction: Box<str>,
}

/// A borrowed [`Decimal`], so request values parse without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DecimalRef<'a> {
    negative: bool,
    integer: &'a str,
    fraction: &'a str,
}

impl Decimal {
    pub(crate) fn parse(text: &str) -> Option<Decimal> {
        let parsed = DecimalRef::parse(text)?;
        Some(Decimal {
            negative: parsed.negative,
            integer: parsed.integer.into(),
            fraction: parsed.fraction.into(),
        })
    }

    pub(crate) fn as_ref(&self) -> DecimalRef<'_> {
        DecimalRef {
            negative: self.negative,
            integer: &self.integer,
            fraction: &self.fraction,
        }
    }
}

impl<'a> DecimalRef<'a> {
    pub(crate) fn parse(text: &'a str) -> Option<DecimalRef<'a>> {
        let (negative, unsigned) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (integer, fraction) = match unsigned.split_once('.') {
            Some((_, "")) => return None,
            Some((integer, fraction)) => (integer, fraction),
            None => (unsigned, ""),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if integer.is_empty() || !digits(integer) || !digits(fraction) {
            return None;
        }
        let integer = integer.trim_start_matches('0');
        let fraction = fraction.trim_end_matches('0');
        // -0 and 0 are the same number.
        let negative = negative && !(integer.is_empty() && fraction.is_empty());
        Some(DecimalRef {
            negative,
            integer,
            fraction,
        })
    }

    pub(crate) fn compare(self, other: DecimalRef<'_>) -> Ordering {
        let magnitude = |a: DecimalRef<'_>, b: DecimalRef<'_>| {
            a.integer
                .len()
                .cmp(&b.integer.len())
                .then_with(|| a.integer.cmp(b.integer))
                // Without trailing zeros, fractions compare as digit strings.
                .then_with(|| a.fraction.cmp(b.fraction))
        };
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => magnitude(self, other),
            (true, true) => magnitude(other, self),
        }
    }
}

/// Epoch seconds (`1700000000`), a date (`2024-01-31`, midnight UTC) or an ISO-8601 / RFC 3339
/// timestamp with a UTC offset (`2024-01-31T12:00:00Z`, `2024-01-31T12:00:00.5+02:00`).
/// Time-zone names and bracketed annotations are refused before jiff sees them, so parsing
/// never consults a time-zone database.
pub(crate) fn parse_date(text: &str) -> Option<Timestamp> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Timestamp::from_second(text.parse().ok()?).ok();
    }
    let allowed = |b: u8| {
        b.is_ascii_digit()
            || matches!(
                b,
                b'-' | b':' | b'.' | b',' | b'+' | b'T' | b't' | b'Z' | b'z'
            )
    };
    if !text.bytes().all(allowed) {
        return None;
    }
    if text.len() == 10 {
        let date: Date = text.parse().ok()?;
        return TimeZone::UTC
            .to_timestamp(date.to_datetime(Time::midnight()))
            .ok();
    }
    text.parse().ok()
}

/// `true` / `false`, ASCII case-insensitive.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A CIDR block or a single address (a /32 or /128).
pub(crate) fn parse_network(text: &str) -> Option<IpNet> {
    match text.parse::<IpNet>() {
        Ok(network) => Some(network.trunc()),
        Err(_) => text.parse::<IpAddr>().ok().map(IpNet::from),
    }
}

/// A request's address; IPv4-mapped IPv6 (`::ffff:10.0.0.1`, what a dual-stack listener
/// reports) is read as the IPv4 address so IPv4 blocks match it.
pub(crate) fn parse_address(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .map(|address| address.to_canonical())
}

pub(crate) fn parse_base64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Unicode case-insensitive equality (simple lowercase mapping on both sides).
pub(crate) fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compare(a: &str, b: &str) -> Ordering {
        DecimalRef::parse(a)
            .unwrap()
            .compare(DecimalRef::parse(b).unwrap())
    }

    #[test]
    fn decimals_compare_exactly() {
        assert_eq!(compare("10", "9"), Ordering::Greater);
        assert_eq!(compare("010", "10"), Ordering::Equal);
        assert_eq!(compare("1.50", "1.5"), Ordering::Equal);
        assert_eq!(compare("0.05", "0.5"), Ordering::Less);
        assert_eq!(compare("0.5", "0.51"), Ordering::Less);
        assert_eq!(compare("-1", "1"), Ordering::Less);
        assert_eq!(compare("-2", "-1"), Ordering::Less);
        assert_eq!(compare("-0", "+0.0"), Ordering::Equal);
        assert_eq!(
            compare("9007199254740993", "9007199254740992"),
            Ordering::Greater,
            "beyond f64 precision"
        );
        assert_eq!(compare("1.0000000000000000000001", "1"), Ordering::Greater);
    }

    #[test]
    fn decimal_syntax() {
        for valid in ["0", "-3", "+3", "3.25", "00.10"] {
            assert!(DecimalRef::parse(valid).is_some(), "{valid}");
        }
        for invalid in [
            "", "-", ".5", "5.", "1e3", "1,5", " 1", "0x10", "NaN", "1.2.3",
        ] {
            assert!(DecimalRef::parse(invalid).is_none(), "{invalid}");
        }
        assert_eq!(
            Decimal::parse("2.50").unwrap().as_ref(),
            DecimalRef::parse("2.5").unwrap()
        );
    }

    #[test]
    fn date_formats() {
        let noon: Timestamp = "2024-01-31T12:00:00Z".parse().unwrap();
        assert_eq!(parse_date("2024-01-31T12:00:00Z"), Some(noon));
        assert_eq!(parse_date("2024-01-31T14:00:00+02:00"), Some(noon));
        assert_eq!(parse_date(&noon.as_second().to_string()), Some(noon));
        assert_eq!(
            parse_date("2024-01-31"),
            Some("2024-01-31T00:00:00Z".parse().unwrap())
        );
        assert!(parse_date("2024-01-31T12:00:00.250Z").unwrap() > noon);
    }

    #[test]
    fn dates_without_offset_or_with_zone_names_are_refused() {
        for invalid in [
            "",
            "2024-01-31T12:00:00",
            "2024-01-31T12:00:00Z[Europe/Paris]",
            "yesterday",
            "2024-13-01",
            "-5",
        ] {
            assert_eq!(parse_date(invalid), None, "{invalid}");
        }
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("true"), Some(true));
        assert_eq!(parse_bool("FALSE"), Some(false));
        assert_eq!(parse_bool("1"), None);
        assert_eq!(parse_bool("yes"), None);
    }

    #[test]
    fn networks_and_addresses() {
        let block = parse_network("203.0.113.7/24").unwrap();
        assert_eq!(block.to_string(), "203.0.113.0/24");
        assert!(block.contains(&parse_address("203.0.113.200").unwrap()));
        assert!(!block.contains(&parse_address("203.0.114.1").unwrap()));
        let single = parse_network("198.51.100.1").unwrap();
        assert!(single.contains(&parse_address("198.51.100.1").unwrap()));
        assert!(!single.contains(&parse_address("198.51.100.2").unwrap()));
        let v6 = parse_network("2001:DB8:1234:5678::/64").unwrap();
        assert!(v6.contains(&parse_address("2001:db8:1234:5678::9").unwrap()));
        assert!(parse_network("10.0.0.0/33").is_none());
        assert!(parse_network("not an ip").is_none());
    }

    #[test]
    fn ipv4_mapped_addresses_read_as_ipv4() {
        let block = parse_network("10.0.0.0/8").unwrap();
        assert!(block.contains(&parse_address("::ffff:10.1.2.3").unwrap()));
    }

    #[test]
    fn base64_values() {
        assert_eq!(
            parse_base64("QmluYXJ5VmFsdWU="),
            Some(b"BinaryValue".to_vec())
        );
        assert_eq!(parse_base64("not base64!"), None);
    }

    #[test]
    fn ignore_case_is_unicode_aware() {
        assert!(eq_ignore_case("Équipe", "éQUIPE"));
        assert!(!eq_ignore_case("equipe", "équipe"));
        assert!(!eq_ignore_case("ab", "abc"));
    }
}
