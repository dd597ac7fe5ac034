//! xs:dateTime as SAML uses it. SAML core 1.3.3 requires UTC; offsets are accepted and converted,
//! a missing zone is read as UTC (some IdPs omit the `Z`).

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// Parses `YYYY-MM-DDThh:mm:ss[.fraction][Z|±hh:mm]`. Anything else is `None`.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
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
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = &text[range];
        digits.bytes().all(|c| c.is_ascii_digit()).then(|| digits.parse().ok())?
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)?;
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &text[19..];
    let mut nanos: u32 = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        for (i, c) in fraction[..len].bytes().take(9).enumerate() {
            nanos += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
        }
        rest = &fraction[len..];
    }
    let offset_seconds: i64 = match rest {
        "" | "Z" => 0,
        zone if zone.len() == 6 && (zone.starts_with('+') || zone.starts_with('-')) && &zone[3..4] == ":" => {
            let hours = i64::from(num_in(zone, 1..3)?);
            let minutes = i64::from(num_in(zone, 4..6)?);
            let magnitude = hours * 3600 + minutes * 60;
            if zone.starts_with('-') {
                -magnitude
            } else {
                magnitude
            }
        }
        _ => return None,
    };
    // 24:00:00 is legal xs:dateTime for the end of a day; SAML IdPs never send it and chrono
    // rejects it, which makes it a parse error here.
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    let local = NaiveDateTime::new(date, time);
    let utc = local.checked_sub_signed(chrono::Duration::seconds(offset_seconds))?;
    Some(DateTime::from_naive_utc_and_offset(utc, Utc))
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
        assert_eq!(format(parse("2023-11-17T20:39:30+02:00").unwrap()), "2023-11-17T18:39:30.000Z");
        assert_eq!(format(parse("2023-11-17T18:39:30").unwrap()), "2023-11-17T18:39:30.000Z");
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
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
