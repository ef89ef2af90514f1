//! Linearizability of single-key register histories (read, write, compare-and-set).
//!
//! Map: [`history`] (the operation model: known and unknown outcomes), [`jepsen`] (Jepsen's
//! history log format), [`wgl`] (the Wing & Gong / Lowe search with memoization of
//! (linearized set, register state), as Porcupine and Knossos do).
//!
//! Used two ways: on histories the simulator records from its stores, and as
//! `minitwin lincheck FILE...` on histories recorded elsewhere.

pub mod history;
pub mod jepsen;
pub mod wgl;

pub use history::{History, Op, Operation};
pub use jepsen::{parse_jepsen, ParseError};
pub use wgl::{check, check_within, Budget, Verdict};
