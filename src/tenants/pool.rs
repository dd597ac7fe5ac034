//! What every metadata fetch shares, whichever round or on-demand refresh runs it: at most
//! `max_concurrent_fetches` fetches at once over the whole process, and each URL in at most one
//! scheduled round at a time.
//!
//! Rounds overlap on purpose: an endpoint that hangs until `timeout_seconds` holds its own URL
//! and one fetch slot, never the refresh loop, so a tenant added meanwhile (or another tenant
//! falling due) is fetched on the next tick. The claim on a URL is what keeps overlapping rounds
//! from fetching the same endpoint twice.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

#[derive(Default)]
pub(crate) struct FetchPool {
    in_flight: Mutex<HashSet<String>>,
    running: Mutex<usize>,
    freed: Condvar,
}

impl FetchPool {
    fn in_flight(&self) -> MutexGuard<'_, HashSet<String>> {
        self.in_flight.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a scheduled round is fetching `url` now.
    pub(crate) fn is_claimed(&self, url: &str) -> bool {
        self.in_flight().contains(url)
    }

    /// Claims the URLs no other round holds; the returned claims release them when dropped
    /// (or one by one as their results are installed).
    pub(crate) fn claim(&self, urls: impl IntoIterator<Item = String>) -> Claims<'_> {
        let mut in_flight = self.in_flight();
        let held = urls.into_iter().filter(|url| in_flight.insert(url.clone())).collect();
        Claims { pool: self, held }
    }

    /// Waits until fewer than `limit` fetches run, and counts this one until the slot drops.
    pub(crate) fn slot(&self, limit: usize) -> Slot<'_> {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let mut running =
            self.freed.wait_while(running, |running| *running >= limit.max(1)).unwrap_or_else(PoisonError::into_inner);
        *running += 1;
        Slot { pool: self }
    }
}

/// URLs one round holds.
pub(crate) struct Claims<'a> {
    pool: &'a FetchPool,
    held: HashSet<String>,
}

impl Claims<'_> {
    pub(crate) fn holds(&self, url: &str) -> bool {
        self.held.contains(url)
    }

    /// Gives `url` back once its results are installed: the next round may fetch it again.
    pub(crate) fn release(&mut self, url: &str) {
        if self.held.remove(url) {
            self.pool.in_flight().remove(url);
        }
    }
}

impl Drop for Claims<'_> {
    // Also on unwinding: a round that panicked must not keep its URLs from ever being fetched.
    fn drop(&mut self) {
        let mut in_flight = self.pool.in_flight();
        for url in self.held.drain() {
            in_flight.remove(&url);
        }
    }
}

/// One running fetch.
pub(crate) struct Slot<'a> {
    pool: &'a FetchPool,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut running = self.pool.running.lock().unwrap_or_else(PoisonError::into_inner);
        *running = running.saturating_sub(1);
        self.pool.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_held_by_one_round_at_a_time() {
        let pool = FetchPool::default();
        let mut first = pool.claim(["https://a/", "https://b/"].map(String::from));
        let second = pool.claim(["https://b/", "https://c/"].map(String::from));
        assert!(first.holds("https://b/") && !second.holds("https://b/") && second.holds("https://c/"));
        first.release("https://b/");
        assert!(!pool.is_claimed("https://b/") && pool.is_claimed("https://a/"));
        drop(first);
        assert!(!pool.is_claimed("https://a/") && pool.is_claimed("https://c/"));
        drop(second);
        assert!(!pool.is_claimed("https://c/"));
    }

    #[test]
    fn no_more_than_the_limit_run_at_once() {
        let pool = std::sync::Arc::new(FetchPool::default());
        let first = pool.slot(2);
        let second = pool.slot(2);
        let (started, waiting) = std::sync::mpsc::channel();
        let third = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let _slot = pool.slot(2);
                started.send(()).unwrap();
            })
        };
        // The third waits for a slot: nothing arrives while two are held (a bounded wait for
        // something that must not happen; it cannot fail a correct pool).
        assert!(waiting.recv_timeout(std::time::Duration::from_millis(200)).is_err());
        assert_eq!(*pool.running.lock().unwrap(), 2);
        drop(first);
        waiting.recv().unwrap();
        third.join().unwrap();
        drop(second);
        assert_eq!(*pool.running.lock().unwrap(), 0);
    }
}
