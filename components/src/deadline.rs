//! Constant timeouts served by one timer.
//!
//! When every deadline is `now + the same timeout`, deadlines arrive in order: a FIFO and one
//! armed timer replace a timer per request (no heap churn for the common case where requests
//! finish in time). Entries for work already finished are skipped by the owner when they fall due.

use crate::context::{Context, TimerId};
use crate::msg::Timer;
use std::collections::VecDeque;

#[derive(Clone, Debug)]
pub struct DeadlineQueue<T> {
    queue: VecDeque<(u64, T)>,
    armed: Option<(u64, TimerId)>,
}

impl<T> Default for DeadlineQueue<T> {
    fn default() -> Self {
        DeadlineQueue {
            queue: VecDeque::new(),
            armed: None,
        }
    }
}

impl<T: Copy> DeadlineQueue<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Adds `item` due at `deadline_ns` (local time). Deadlines must not decrease.
    pub fn push(&mut self, ctx: &mut dyn Context, deadline_ns: u64, item: T) {
        if let Some(&(last, _)) = self.queue.back() {
            assert!(deadline_ns >= last, "deadlines must be pushed in order");
        }
        self.queue.push_back((deadline_ns, item));
        if self.armed.is_none() {
            self.arm(ctx);
        }
    }

    fn arm(&mut self, ctx: &mut dyn Context) {
        if let Some(&(deadline, _)) = self.queue.front() {
            let after = deadline.saturating_sub(ctx.now_ns());
            let id = ctx.set_timer(after, Timer::Deadlines);
            self.armed = Some((deadline, id));
        }
    }

    /// Call on `Timer::Deadlines`: returns every item now due, and re-arms for the next.
    pub fn fire(&mut self, ctx: &mut dyn Context, due: &mut Vec<T>) {
        self.armed = None;
        let now = ctx.now_ns();
        while let Some(&(deadline, item)) = self.queue.front() {
            if deadline > now {
                break;
            }
            self.queue.pop_front();
            due.push(item);
        }
        self.arm(ctx);
    }
}
