//! Test builds only: a per-thread tally of the expensive steps (bytes libxml2 parsed, C14N
//! output, RSA public-key operations), so that tests can check how much work a path does
//! rather than how long it takes (`equalize.rs`).

use std::cell::Cell;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Bytes libxml2 parsed: whole documents, and of a refused one as far as it read.
    pub parsed_bytes: usize,
    /// Bytes of canonical XML written.
    pub canonical_bytes: usize,
    /// RSA signature checks (public-key operations).
    pub rsa_checks: usize,
}

thread_local! {
    static TALLY: Cell<Tally> = const { Cell::new(Tally { parsed_bytes: 0, canonical_bytes: 0, rsa_checks: 0 }) };
}

pub(crate) fn add(update: impl FnOnce(&mut Tally)) {
    TALLY.with(|tally| {
        let mut value = tally.get();
        update(&mut value);
        tally.set(value);
    });
}

/// The tally since the last call, reset.
pub(crate) fn take() -> Tally {
    TALLY.with(|tally| tally.replace(Tally::default()))
}
