//! What crosses the network between the monitor and the nodes it scrapes: a scrape, and the
//! node's registry as samples (served by the node's process, as an exporter serves
//! `/metrics`: a node that is down, or cut off, does not answer, and its `up` is 0).

/// Which number of a registry entry a sample is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// A counter's or gauge's value, a level's current value.
    Value,
    /// A histogram's count of observations.
    Count,
    /// A histogram's 99th percentile over the interval since the previous scrape, in
    /// milliseconds (absent when nothing was recorded in it).
    P99Ms,
}

impl Part {
    /// The suffix the part adds to its metric's name in series and files.
    pub fn suffix(self) -> &'static str {
        match self {
            Part::Value => "",
            Part::Count => "_count",
            Part::P99Ms => "_p99_ms",
        }
    }
}

/// One sample: a metric of the registry, the part of it, and the value's bits (`f64`, so that
/// messages stay comparable and hashable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sample {
    pub name: &'static str,
    pub part: Part,
    pub bits: u64,
}

impl Sample {
    pub fn new(name: &'static str, part: Part, value: f64) -> Sample {
        Sample {
            name,
            part,
            bits: value.to_bits(),
        }
    }

    pub fn value(&self) -> f64 {
        f64::from_bits(self.bits)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MonitorMsg {
    /// Monitor -> node: send your registry.
    Scrape { seq: u64 },
    /// Node -> monitor: the registry now.
    Samples { seq: u64, samples: Vec<Sample> },
}
