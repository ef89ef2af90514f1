//! A node's timers. tokio's timer wheel ticks in whole milliseconds, so a 50 us timer (a
//! service's CPU time, a group commit's wait) would fire about a millisecond late, every time:
//! the production system would be slower than the component it runs, for no reason of its own.
//! Outside madsim a node has one timer thread that sleeps on a condition variable until the
//! earliest deadline (the kernel's timer slack: tens of microseconds) and hands due timers to
//! the node as events. Under madsim time is simulated and exact: tokio's sleep is used.

#[cfg(madsim)]
use std::time::Duration;

/// Where due timers go.
pub trait Due: Send + 'static {
    fn due(&self, token: u64);
}

#[cfg(not(madsim))]
mod thread {
    use super::Due;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::{Duration, Instant};

    /// (deadline, sequence, token), earliest first.
    type Deadlines = BinaryHeap<Reverse<(Instant, u64, u64)>>;

    struct Shared {
        /// None once stopped.
        heap: Mutex<Option<Deadlines>>,
        wake: Condvar,
    }

    /// The node's timer thread; dropping it stops the thread.
    pub struct Timers {
        shared: Arc<Shared>,
        seq: u64,
    }

    #[allow(clippy::disallowed_methods)] // production timers run on the monotonic clock
    fn now() -> Instant {
        Instant::now()
    }

    impl Timers {
        pub fn new(name: &str, due: impl Due) -> std::io::Result<Timers> {
            let shared = Arc::new(Shared {
                heap: Mutex::new(Some(BinaryHeap::new())),
                wake: Condvar::new(),
            });
            let s = shared.clone();
            #[allow(clippy::disallowed_methods)] // the production driver's own timer thread
            std::thread::Builder::new()
                .name(format!("timers {name}"))
                .spawn(move || run(&s, &due))?;
            Ok(Timers { shared, seq: 0 })
        }

        pub fn set(&mut self, after: Duration, token: u64) {
            self.seq += 1;
            let deadline = now() + after;
            let mut heap = self.shared.heap.lock().expect("timers lock");
            if let Some(h) = heap.as_mut() {
                let earliest = h.peek().map(|Reverse((d, _, _))| *d);
                h.push(Reverse((deadline, self.seq, token)));
                if earliest.is_none_or(|e| deadline < e) {
                    self.shared.wake.notify_one();
                }
            }
        }
    }

    impl Drop for Timers {
        fn drop(&mut self) {
            *self.shared.heap.lock().expect("timers lock") = None;
            self.shared.wake.notify_one();
        }
    }

    fn run(shared: &Shared, due: &dyn Due) {
        let mut heap = shared.heap.lock().expect("timers lock");
        loop {
            let Some(h) = heap.as_mut() else { return };
            let t = now();
            let mut fired = Vec::new();
            while let Some(Reverse((d, _, token))) = h.peek().copied() {
                if d > t {
                    break;
                }
                h.pop();
                fired.push(token);
            }
            let wait = h
                .peek()
                .map(|Reverse((d, _, _))| d.saturating_duration_since(t));
            if !fired.is_empty() {
                drop(heap);
                for token in fired {
                    due.due(token);
                }
                heap = shared.heap.lock().expect("timers lock");
                continue;
            }
            heap = match wait {
                Some(w) => shared.wake.wait_timeout(heap, w).expect("timers lock").0,
                None => shared.wake.wait(heap).expect("timers lock"),
            };
        }
    }
}

#[cfg(not(madsim))]
pub use thread::Timers;

/// Under madsim: a task per timer on the simulated clock.
#[cfg(madsim)]
pub struct Timers {
    due: std::sync::Arc<dyn Due + Sync>,
}

#[cfg(madsim)]
impl Timers {
    pub fn new(_name: &str, due: impl Due + Sync) -> std::io::Result<Timers> {
        Ok(Timers {
            due: std::sync::Arc::new(due),
        })
    }

    pub fn set(&mut self, after: Duration, token: u64) {
        let due = self.due.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            due.due(token);
        });
    }
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    struct Chan(Mutex<mpsc::Sender<(u64, Instant)>>);
    use std::sync::Mutex;
    impl Due for Chan {
        fn due(&self, token: u64) {
            #[allow(clippy::disallowed_methods)]
            let at = Instant::now();
            let _ = self.0.lock().unwrap().send((token, at));
        }
    }

    #[test]
    #[allow(clippy::disallowed_methods)]
    fn timers_fire_in_deadline_order_and_sub_millisecond_ones_are_not_rounded_to_a_tick() {
        let (tx, rx) = mpsc::channel();
        let mut t = Timers::new("test", Chan(Mutex::new(tx))).unwrap();
        let start = Instant::now();
        t.set(Duration::from_millis(30), 3);
        t.set(Duration::from_millis(10), 1);
        t.set(Duration::from_micros(50), 0);
        t.set(Duration::from_millis(20), 2);
        let got: Vec<(u64, Duration)> = (0..4)
            .map(|_| {
                let (tok, at) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
                (tok, at - start)
            })
            .collect();
        assert_eq!(
            got.iter().map(|g| g.0).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        // Never early (how late is a matter for `benches/`, not a timed test).
        assert!(got[1].1 >= Duration::from_millis(10));
        assert!(got[3].1 >= Duration::from_millis(30));
    }
}
