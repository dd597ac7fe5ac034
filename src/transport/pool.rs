//! The bounded pool that runs XML work. Parsing, canonicalization and signature checks are pure
//! CPU; running them on the transports' event-loop threads would stall every other connection
//! of that loop behind one large document. Validations queue here instead, on as many threads
//! as there are cores; the queue itself is bounded by the admission limit
//! (`max_concurrent_validations`), since only admitted requests are submitted.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send + 'static>;

pub struct Pool {
    sender: Mutex<mpsc::Sender<Job>>,
}

impl Pool {
    pub fn new(threads: usize) -> std::io::Result<Pool> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new().name(format!("xml-{index}")).spawn(move || loop {
                // Holding the lock only while waiting for the next job.
                let job = match receiver.lock() {
                    Ok(receiver) => receiver.recv(),
                    Err(poisoned) => poisoned.into_inner().recv(),
                };
                match job {
                    Ok(job) => job(),
                    Err(_) => return, // the pool was dropped
                }
            })?;
        }
        Ok(Pool { sender: Mutex::new(sender) })
    }

    /// Runs `work` on the pool and waits for its result without blocking the caller's thread.
    /// `None` only if the pool is gone (shutdown) or the job panicked outside its own guard.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (reply, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(work());
        });
        let sent = match self.sender.lock() {
            Ok(sender) => sender.send(job),
            Err(poisoned) => poisoned.into_inner().send(job),
        };
        sent.ok()?;
        result.await.ok()
    }
}
