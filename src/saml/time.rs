//! xs:dateTime as SAML uses it. SAML core 1.3.3 requires UTC, so the zone must be `Z`, `+00:00`
//! or `-00:00`. Any other offset is refused, even one xs:dateTime allows (at most ±14:00): no IdP
//! of the conformance corpus sends one, and converting offsets is where `-99:99` and `-23:59`
//! used to shift validity windows by days. A time without a zone is local time of an unknown
//! place, which can move a window by up to 14 hours either way; it is refused too.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// Why a timestamp was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeError {
    /// Not `YYYY-MM-DDThh:mm:ss[.fraction]` followed by a zone, or not a real date and time.
    Syntax,
    /// No zone at all: local time, ambiguous.
    NoZone,
    /// An offset beyond ±14:00 or with minutes of 60 or more: not an xs:dateTime.
    OffsetOutOfRange,
    /// A valid offset other than zero: SAML core 1.3.3 requires UTC.
    NotUtc,
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeError::Syntax => "is not an xs:dateTime",
            TimeError::NoZone => "has no time zone; SAML core 1.3.3 requires UTC (`Z`)",
            TimeError::OffsetOutOfRange => "has a time zone offset outside ±14:00; not an xs:dateTime",
            TimeError::NotUtc => "is not in UTC; SAML core 1.3.3 requires UTC (`Z`)",
        })
    }
}

/// Parses `YYYY-MM-DDThh:mm:ss[.fraction](Z|+00:00|-00:00)`. Anything else is `None`; see
/// [`parse_utc`] for the reason.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    parse_utc(text).ok()
}

/// [`parse`], saying why a timestamp was refused.
pub fn parse_utc(text: &str) -> Result<DateTime<Utc>, TimeError> {
    use TimeError::Syntax;
    // ASCII only, so that every byte index below is a character boundary.
    let b = text.as_bytes();
    if !text.is_ascii()
        || b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(Syntax);
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = &text[range];
        digits.bytes().all(|c| c.is_ascii_digit()).then(|| digits.parse().ok())?
    };
    let field = |range| num(range).ok_or(Syntax);
    let year = i32::try_from(field(0..4)?).map_err(|_| Syntax)?;
    let date = NaiveDate::from_ymd_opt(year, field(5..7)?, field(8..10)?).ok_or(Syntax)?;
    let (hour, minute, second) = (field(11..13)?, field(14..16)?, field(17..19)?);
    let mut rest = &text[19..];
    let mut nanos: u32 = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return Err(Syntax);
        }
        for (i, c) in fraction[..len].bytes().take(9).enumerate() {
            nanos += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
        }
        rest = &fraction[len..];
    }
    // 24:00:00 is legal xs:dateTime for the end of a day; SAML IdPs never send it and chrono
    // rejects it, which makes it a parse error here.
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos).ok_or(Syntax)?;
    match rest {
        "Z" | "+00:00" | "-00:00" => {}
        "" => return Err(TimeError::NoZone),
        zone if zone.len() == 6 && (zone.starts_with('+') || zone.starts_with('-')) && &zone[3..4] == ":" => {
            let hours = num_in(zone, 1..3).ok_or(Syntax)?;
            let minutes = num_in(zone, 4..6).ok_or(Syntax)?;
            // xs:dateTime offsets run from -14:00 to +14:00 with minutes below 60 (XML Schema 1.1
            // part 2, timezoneFrag).
            if minutes >= 60 || hours > 14 || (hours == 14 && minutes > 0) {
                return Err(TimeError::OffsetOutOfRange);
            }
            return Err(TimeError::NotUtc);
        }
        _ => return Err(Syntax),
    }
    Ok(DateTime::from_naive_utc_and_offset(NaiveDateTime::new(date, time), Utc))
}

fn num_in(text: &str, range: std::ops::Range<usize>) -> Option<u32> {
    let digits = text.get(range)?;
    digits.bytes().all(|c| c.is_ascii_digit()).then(|| digits.parse().ok())?
}

/// The canonical form used in every output: RFC 3339, UTC, millisecond precision.
pub fn format(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_idps_send() {
        assert_eq!(format(parse("2023-11-17T18:39:30.314Z").unwrap()), "2023-11-17T18:39:30.314Z");
        assert_eq!(format(parse("2023-11-17T18:39:30Z").unwrap()), "2023-11-17T18:39:30.000Z");
        assert_eq!(format(parse("2023-11-17T18:39:30.3141592Z").unwrap()), "2023-11-17T18:39:30.314Z");
        assert_eq!(format(parse("2023-11-17T18:39:30+00:00").unwrap()), "2023-11-17T18:39:30.000Z");
        assert_eq!(format(parse("2023-11-17T18:39:30.5-00:00").unwrap()), "2023-11-17T18:39:30.500Z");
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "2023-11-17",
            "2023-11-17 18:39:30Z",
            "2023-13-17T18:39:30Z",
            "2023-11-17T18:39:30.Z",
            "2023-11-17T18:39:30ZZ",
            "2023-11-17T18:39:30+2:00",
            "2023-11-17T25:39:30Z",
            "２０２３-11-17T18:39:30Z",
            "2026-11-29T10:00:0éZ",
            "2026-11-29T10:00:00+0€0",
        ] {
            assert_eq!(parse_utc(bad), Err(TimeError::Syntax), "{bad}");
        }
    }

    #[test]
    fn refuses_local_times_and_every_offset_but_zero() {
        use TimeError::*;
        for (text, why) in [
            ("2023-11-17T18:39:30", NoZone),
            ("2023-11-17T18:39:30.314", NoZone),
            ("2023-11-17T20:39:30+02:00", NotUtc),
            ("2023-11-17T18:39:30+14:00", NotUtc),
            ("2023-11-17T18:39:30-14:00", NotUtc),
            ("2023-11-17T18:39:30-23:59", OffsetOutOfRange),
            ("2023-11-17T18:39:30-99:99", OffsetOutOfRange),
            ("2023-11-17T18:39:30+14:01", OffsetOutOfRange),
            ("2023-11-17T18:39:30+00:60", OffsetOutOfRange),
            ("2023-11-17T18:39:30+0a:00", Syntax),
            ("2023-11-17T18:39:30+00:00Z", Syntax),
            ("2023-11-17T18:39:30z", Syntax),
            ("2023-11-17T25:39:30+02:00", Syntax),
        ] {
            assert_eq!(parse_utc(text), Err(why), "{text}");
        }
    }
}
