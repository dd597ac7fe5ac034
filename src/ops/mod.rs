//! Operations: metrics, logging, and the clock. Leaves: nothing here uses another layer.

pub mod metrics;
pub mod telemetry;

use chrono::{DateTime, Utc};

/// The only place the service reads the wall clock; the core, the configuration reader and the
/// tenant registry always receive `now` as an argument.
pub fn wall_clock() -> DateTime<Utc> {
    Utc::now()
}
