//! Logging setup: JSON lines for machines, readable text in a terminal; filter from `RUST_LOG`,
//! else from the configuration.

use std::io::IsTerminal as _;

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
    let _ =
        if json { builder.json().flatten_event(true).with_current_span(false).try_init() } else { builder.try_init() };
}
