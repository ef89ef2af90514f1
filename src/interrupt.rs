//! Ctrl-C: the first SIGINT asks the running simulation to stop at its next chunk boundary
//! (about 10 simulated seconds) and write what it has, marked partial; a second one kills the
//! process as usual.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the first SIGINT.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// Exit code of a run that was interrupted (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

#[cfg(unix)]
extern "C" fn on_sigint(_: libc::c_int) {
    if STOP.swap(true, Ordering::SeqCst) {
        // Second Ctrl-C: give up at once.
        // SAFETY: restoring the default action and re-raising are async-signal-safe.
        unsafe {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::raise(libc::SIGINT);
        }
    }
}

/// Installs the handler (a no-op where signals are not Unix signals).
pub fn install() {
    #[cfg(unix)]
    // SAFETY: the handler only touches an atomic and calls async-signal-safe functions.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

#[cfg(unix)]
extern "C" fn on_sigterm(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// SIGTERM sets the same flag (for commands that supervise processes: `minitwin up`).
pub fn install_term() {
    #[cfg(unix)]
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(
            libc::SIGTERM,
            on_sigterm as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

pub fn requested() -> bool {
    STOP.load(Ordering::Relaxed)
}
