//! What happened during an invocation, as facts: the service records them where they happen, the entry turns
//! them into CloudWatch metrics (Embedded Metric Format) and the completion events are published from them.

use super::ids::{AccountId, ImageId, Region};

/// One thing that happened. `region` is the destination region where it applies. Small (the rare large
/// variants are boxed): an invocation may record one per job it touches.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    /// CopyImage started a copy.
    CopyStarted { region: Region, rule: Option<std::sync::Arc<str>> },
    /// A copy became available and its launch permissions were applied (first time: a job that later finds
    /// it shared records nothing).
    CopyCompleted(Box<Completion>),
    /// A copy ended `failed`.
    CopyFailed { region: Region },
    /// A failed copy is being replaced by a new attempt.
    CopyReplaced { region: Region },
    /// A replication was dead-lettered (`region`/`account` when it concerns one place), with the reason.
    DeadLettered { region: Option<Region>, failure: Option<Box<Failure>> },
    /// `jobs` wait for room under the concurrent-copy limit (or the time-based copy quota).
    CapacityWait { region: Region, jobs: u32 },
    /// `calls` API calls were throttled.
    Throttled { region: Region, calls: u32 },
    /// The oldest job of the invocation, from its fan-out to now.
    OldestJobAge { seconds: f64 },
    /// An older copy of a family was retired (RETAIN_COPIES): deregistered, its snapshots deleted.
    CopyRetired(Box<Retired>),
    /// The admission table (ADMISSION_TABLE) refused or failed a lease: the place's jobs wait.
    AdmissionTableFailed { permanent: bool },
}

/// A copy retired by retention.
#[derive(Debug, Clone, PartialEq)]
pub struct Retired {
    pub copy: ImageId,
    /// The account that owned the copy.
    pub account: AccountId,
    pub region: Region,
    pub family_tag: String,
    pub family: String,
    pub reason: String,
}

/// A copy made available and shared.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub source_image: ImageId,
    pub source_region: Region,
    pub copy: ImageId,
    /// The account that owns the copy.
    pub account: AccountId,
    pub region: Region,
    /// From CopyImage to available (an upper bound, by at most one poll, when the copy was seen by polling).
    pub copy_seconds: Option<f64>,
    /// From available to shared; known when a copy event told when the copy became available.
    pub share_latency_seconds: Option<f64>,
    /// The source's name, for the SSM parameter's name.
    pub source_name: Option<String>,
    /// The source's creation date (RFC 3339).
    pub source_created: Option<String>,
    /// The rule the copy was made under (REPLICATION_RULES).
    pub rule: Option<String>,
}

/// A place given up on, with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub source_image: ImageId,
    pub source_region: Region,
    pub account: AccountId,
    pub region: Region,
    pub reason: String,
}

impl Fact {
    /// The destination region the fact is about, if any.
    pub fn region(&self) -> Option<&Region> {
        match self {
            Fact::CopyStarted { region, .. }
            | Fact::CopyFailed { region }
            | Fact::CopyReplaced { region }
            | Fact::CapacityWait { region, .. }
            | Fact::Throttled { region, .. } => Some(region),
            Fact::CopyCompleted(c) => Some(&c.region),
            Fact::CopyRetired(r) => Some(&r.region),
            Fact::DeadLettered { region, .. } => region.as_ref(),
            Fact::OldestJobAge { .. } | Fact::AdmissionTableFailed { .. } => None,
        }
    }

    /// The replication rule the fact is about (REPLICATION_RULES), if known.
    pub fn rule(&self) -> Option<&str> {
        match self {
            Fact::CopyStarted { rule, .. } => rule.as_deref(),
            Fact::CopyCompleted(c) => c.rule.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_fact_stays_small() {
        assert!(std::mem::size_of::<super::Fact>() <= 48, "{}", std::mem::size_of::<super::Fact>());
    }
}
