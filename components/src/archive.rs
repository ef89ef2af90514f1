//! The cold-storage archiver. Work in progress: see issue #3.

/// Messages of the archiver.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ArchiveMsg {}
