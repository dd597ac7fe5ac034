//! Operations: metrics, logging, and the clock. Leaves: nothing here uses another layer.

pub mod metrics;
pub mod telemetry;

use chrono::{DateTime, Utc};

/// The only place the service reads the wall clock; the core, the configuration reader and the
/// tenant registry always receive `now` as an argument. `clippy.toml` forbids every other read.
#[allow(clippy::disallowed_methods)]
pub fn wall_clock() -> DateTime<Utc> {
    Utc::now()
}

/// The only read of the monotonic clock, for durations (request timing, debounce, warnings
/// rate-limited per interval); never for anything a validation decides.
#[allow(clippy::disallowed_methods)]
pub fn monotonic() -> std::time::Instant {
    std::time::Instant::now()
}
