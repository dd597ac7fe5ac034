//! Logging setup: JSON lines for machines, readable text in a terminal; filter from `RUST_LOG`,
//! else from the configuration.

use std::fmt;
use std::io::IsTerminal as _;

use chrono::{Datelike as _, Timelike as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Json, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once per process; later calls are no-ops). `format` is
/// "json", "text", or `None` for JSON unless standard error is a terminal.
pub fn init(default_filter: &str, format: Option<&str>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let json = match format {
        Some("json") => true,
        Some(_) => false,
        None => !std::io::stderr().is_terminal(),
    };
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(false).map_event_format(ValidationLines::new).try_init()
    } else {
        builder.try_init()
    };
}

/// The JSON line format, with the one line every validation writes built directly: the stock
/// formatter routes each of its dozens of small writes through an `io::Write` adapter that
/// re-checks UTF-8, and spent 15 k instructions per validation (issue 32, BENCHMARKS.md). The
/// bytes are the stock formatter's (tests compare them), so log pipelines see no change; every
/// other event, and any event inside a span, goes to the stock formatter.
pub struct ValidationLines {
    stock: Format<Json>,
}

impl ValidationLines {
    pub fn new(stock: Format<Json>) -> ValidationLines {
        ValidationLines { stock }
    }
}

impl<S, N> FormatEvent<S, N> for ValidationLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        if meta.target() != "validation" || event.parent().is_some() || ctx.lookup_current().is_some() {
            return self.stock.format_event(ctx, writer, event);
        }
        writer.write_str("{\"timestamp\":\"")?;
        write_timestamp(&mut writer, crate::ops::wall_clock())?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(meta.level().as_str())?;
        writer.write_char('"')?;
        let mut fields = Fields { writer: &mut writer, result: Ok(()) };
        event.record(&mut fields);
        fields.result?;
        writer.write_str(",\"target\":")?;
        write_json_string(&mut writer, meta.target())?;
        writer.write_str("}\n")
    }
}

/// RFC 3339 in UTC with microseconds, as the stock timer writes it (`2026-12-07T08:54:43.711355Z`).
fn write_timestamp(out: &mut impl fmt::Write, now: chrono::DateTime<chrono::Utc>) -> fmt::Result {
    let digits = |out: &mut dyn fmt::Write, value: u32, width: u32| -> fmt::Result {
        for place in (0..width).rev() {
            out.write_char(char::from(b'0' + ((value / 10u32.pow(place)) % 10) as u8))?;
        }
        Ok(())
    };
    match now.year() {
        year @ 0..=9999 => digits(out, year.unsigned_abs(), 4)?,
        year if year > 9999 => write!(out, "+{year}")?,
        year => write!(out, "{year:05}")?,
    }
    out.write_char('-')?;
    digits(out, now.month(), 2)?;
    out.write_char('-')?;
    digits(out, now.day(), 2)?;
    out.write_char('T')?;
    digits(out, now.hour(), 2)?;
    out.write_char(':')?;
    digits(out, now.minute(), 2)?;
    out.write_char(':')?;
    digits(out, now.second(), 2)?;
    out.write_char('.')?;
    // A leap second's nanoseconds run past 10^9; the stock timer (SystemTime) never sees one.
    digits(out, (now.nanosecond() % 1_000_000_000) / 1_000, 6)?;
    out.write_char('Z')
}

/// A JSON string escaped exactly as serde_json escapes it (the stock formatter's bytes).
fn write_json_string(out: &mut impl fmt::Write, value: &str) -> fmt::Result {
    out.write_char('"')?;
    let mut start = 0;
    for (at, byte) in value.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.write_str(&value[start..at])?;
        if escape.is_empty() {
            write!(out, "\\u00{byte:02x}")?;
        } else {
            out.write_str(escape)?;
        }
        start = at + 1;
    }
    out.write_str(&value[start..])?;
    out.write_char('"')
}

/// The event's fields, in order, each `,"name":value` as the stock visitor writes them.
struct Fields<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn entry(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self
                .writer
                .write_char(',')
                .and_then(|()| write_json_string(self.writer, field.name()))
                .and_then(|()| self.writer.write_char(':'))
                .and_then(|()| value(self.writer));
        }
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, |w| write_json_string(w, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // serde_json's own number format (and `null` for NaN and infinities).
        self.entry(field, |w| w.write_str(&serde_json::to_string(&value).unwrap_or_else(|_| "null".into())));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field, |w| write_json_string(w, &format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// Every kind of event the service writes under target "validation", and some it does not,
    /// with strings that need each kind of escape.
    fn events() {
        let odd = "q\"b\\s/n\nr\rt\tb\u{8}f\u{c}nul\u{0}us\u{1f}del\u{7f}é€😀\u{2028}";
        tracing::info!(target: "validation", request_id = "r1", tenant = "t", outcome = "valid", duration_us = 171u64, assertion_id_hash = "cdb0a6d8a483a377");
        tracing::info!(target: "validation", request_id = odd, tenant = odd, outcome = "rejected", code = "signature_invalid", duration_us = 0u64);
        tracing::debug!(target: "validation", request_id = "r3", parser_detail = %odd);
        tracing::error!(target: "validation", "validation panicked; answered internal_error");
        tracing::warn!(target: "validation", signed = -5i64, yes = true, no = false, ratio = 0.1f64, nan = f64::NAN, big = u128::MAX, debug = ?odd);
        tracing::info!(target: "supervisor", tenants = 3u64, "listening on {}", odd);
        let span = tracing::info_span!("in_a_span", id = 7u64);
        span.in_scope(|| tracing::info!(target: "validation", request_id = "in span"));
    }

    fn lines(fast: bool) -> Vec<String> {
        let captured = Captured::default();
        let builder = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(captured.clone())
            .json()
            .flatten_event(true)
            .with_current_span(false);
        if fast {
            tracing::subscriber::with_default(builder.map_event_format(ValidationLines::new).finish(), events);
        } else {
            tracing::subscriber::with_default(builder.finish(), events);
        }
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        // The timestamps differ by when each line was written; their format is tested below.
        text.lines()
            .map(|line| {
                let value = serde_json::from_str::<serde_json::Value>(line).unwrap();
                let stamp = value["timestamp"].as_str().unwrap().to_string();
                assert_eq!(stamp.len(), "2026-12-07T08:54:43.711355Z".len(), "{line}");
                line.replacen(&stamp, "T", 1)
            })
            .collect()
    }

    #[test]
    fn validation_lines_are_the_stock_formatters_bytes() {
        let (stock, fast) = (lines(false), lines(true));
        assert_eq!(stock.len(), 7, "{stock:#?}");
        assert_eq!(fast, stock);
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        for text in
            ["2026-12-07T08:54:43.711355123Z", "0999-01-02T03:04:05.000000999Z", "2024-02-29T23:59:59.999999999Z"]
        {
            let at = chrono::DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&chrono::Utc);
            let mut out = String::new();
            write_timestamp(&mut out, at).unwrap();
            assert_eq!(out, at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        }
    }
}
