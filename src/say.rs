//! Printing that survives a closed or full stdout (`minitwin run ... | head`): a failed write
//! is dropped, never a panic; the run goes on and still writes its results.

/// `println!` to stdout, ignoring write errors.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `print!` to stdout, ignoring write errors.
#[macro_export]
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}
