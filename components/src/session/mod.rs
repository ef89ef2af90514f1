//! The session cluster (Redis Cluster-like). Work in progress: see issue #3.

/// Messages of the session cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SessionMsg {}
