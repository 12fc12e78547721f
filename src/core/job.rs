//! The work item: everything needed to resume replicating one image to one destination region.
//! It travels in SQS message bodies; nothing else holds state.

use super::ids::{AccountId, ImageId, Place, Region};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Version of the continuation message format; a message with another version is rejected with a clear error.
pub const MESSAGE_VERSION: u32 = 1;

/// Replicate `image` from `source_region` to `targets` (the configured regions when `None`). Its JSON form is
/// the work item a person or a pipeline writes: `{"image_id", "source_region", "target_regions"}`; `retries`
/// is set by the product when it sends a request back after a passing failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationRequest {
    #[serde(rename = "image_id")]
    pub image: ImageId,
    pub source_region: Region,
    #[serde(rename = "target_regions", default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<Region>>,
    /// Ask for encrypted (`true`) or explicitly unencrypted (`false`) copies; unset: ENCRYPT_COPIES decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    /// The account an EventBridge event came from (forwarded copy events of target accounts). Never read from a
    /// work item: only the decoder of events sets it.
    #[serde(skip)]
    pub event_account: Option<AccountId>,
    /// When the event happened (epoch seconds): for a copy event, when the copy became available.
    #[serde(skip)]
    pub event_time: Option<i64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ReplicationRequest {
    pub fn new(image: ImageId, source_region: Region, targets: Option<Vec<Region>>) -> Self {
        Self { image, source_region, targets, encrypted: None, retries: 0, event_account: None, event_time: None }
    }

    /// The work-item JSON of this request.
    pub fn body(&self) -> String {
        // Serialising validated strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Where a job stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Find an existing copy or start one.
    Copy,
    /// A copy was started (or found): wait until it is available, then share it.
    Wait { copy_image: ImageId },
}

/// One image to one destination region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub source_image: ImageId,
    pub source_region: Region,
    pub destination: Region,
    /// The target account that owns the copy (TARGET_ACCOUNTS); `None`: the function's own account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    /// The source has encrypted snapshots (a target account's copy is then always encrypted with its own key).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub source_encrypted: bool,
    /// Name and description of the source, captured at fan-out so that copying needs no second read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Size of the source in GiB, captured at fan-out: larger images start first (their copies take longest).
    #[serde(default)]
    pub size_gib: u32,
    /// A work item's wish for encryption (`None`: the operator's ENCRYPT_COPIES decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypt: Option<bool>,
    /// The source is paravirtual (explains CopyImage's refusal in regions without PV support).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paravirtual: bool,
    /// The source's deprecation time (RFC 3339), set on every copy too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecation_time: Option<String>,
    #[serde(flatten)]
    pub phase: Phase,
    /// Copies of this job that ended `failed` so far.
    #[serde(default)]
    pub failed_copies: u32,
    /// The last failed copy, kept until its successor exists (then deregistered): were it deregistered before
    /// this job is durable, a stop in between would look like a cancelled copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<ImageId>,
    /// Times the copy was found still pending.
    #[serde(default)]
    pub polls: u32,
    /// Consecutive transient failures (service errors, unknown codes); bounded.
    #[serde(default)]
    pub retries: u32,
    /// Consecutive throttling answers; never a failure, only a growing delay.
    #[serde(default)]
    pub throttles: u32,
    /// Consecutive waits for capacity in the destination region; never a failure.
    #[serde(default)]
    pub capacity_waits: u32,
    /// A hint for polling: when this job's copy started, its place was full or jobs waited there, so the poll that
    /// finds the copy settled also admits from the place's waiting list.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub behind: bool,
    /// When the job was made (fan-out or sweep), in epoch seconds: the age of the oldest job is a metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// When CopyImage started the copy waited for, in epoch seconds (the copy duration metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_started: Option<i64>,
    /// The source's creation date (RFC 3339): which source is newer decides an SSM parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_created: Option<String>,
    /// The replication rule the job was made under (REPLICATION_RULES). A hint like every field: admission sets
    /// it from the rule that matches the source as EC2 shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The source's tags as EC2 shows them now, set at admission (`trust::refresh_from_source`) and never carried
    /// by a message: the copy is created with its user tags (`provenance::copy_tags`).
    #[serde(skip)]
    pub source_tags: Vec<super::image::Tag>,
    /// The source's owner as EC2 shows it, set at admission like `source_tags`: the copy says whose source it was.
    #[serde(skip)]
    pub source_owner: Option<AccountId>,
    /// The source is instance-store-backed (set at admission): its copy goes through S3.
    #[serde(skip)]
    pub instance_store: bool,
}

impl Job {
    pub fn new(
        source_image: ImageId,
        source_region: Region,
        destination: Region,
        name: Option<String>,
        description: Option<String>,
    ) -> Self {
        Self {
            source_image,
            source_region,
            destination,
            account: None,
            source_encrypted: false,
            name,
            description,
            size_gib: 0,
            encrypt: None,
            paravirtual: false,
            deprecation_time: None,
            phase: Phase::Copy,
            failed_copies: 0,
            replaces: None,
            polls: 0,
            retries: 0,
            throttles: 0,
            capacity_waits: 0,
            behind: false,
            since: None,
            copy_started: None,
            source_created: None,
            rule: None,
            source_tags: Vec::new(),
            source_owner: None,
            instance_store: false,
        }
    }

    /// Where the copy is made: the target account (or this one) and the destination region.
    pub fn place(&self) -> Place {
        Place::new(self.account.clone(), self.destination.clone())
    }

    /// What identifies the copy this job makes: source, source region and place.
    pub fn key(&self) -> (ImageId, Region, Place) {
        (self.source_image.clone(), self.source_region.clone(), self.place())
    }

    pub fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::Copy => "copy",
            Phase::Wait { .. } => "wait",
        }
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} -> {} ({})", self.source_image, self.source_region, self.place(), self.phase_name())
    }
}

/// Jobs per continuation message: 100 jobs stay far below SQS's 256 KiB even with 255-character descriptions.
pub const JOBS_PER_MESSAGE: usize = 100;

/// The body of a continuation message: `{"ami_replicator": 1, "jobs": [...]}`. Jobs of one destination region
/// travel together, so that one invocation checks them with one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Continuation {
    pub ami_replicator: u32,
    #[serde(default)]
    pub jobs: Vec<Job>,
    /// Watched replications (PUBLISH_EVENTS): `{"ami_replicator": 1, "jobs": [], "watch": [...]}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<super::watch::Watch>,
    /// Places whose waiting jobs to look at (a wake-up): `{"ami_replicator": 1, "jobs": [], "wake": [{"region":
    /// ...}]}`. `check`: only when some wait there (a copy event's; read first, without the lease).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wake: Vec<Place>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub check: bool,
}

impl Continuation {
    /// The body of a watch message.
    pub fn watch_body(watch: &[super::watch::Watch]) -> String {
        let envelope = Continuation {
            ami_replicator: MESSAGE_VERSION,
            jobs: vec![],
            watch: watch.to_vec(),
            wake: vec![],
            check: false,
        };
        serde_json::to_string(&envelope).unwrap_or_default()
    }

    /// The body of a wake-up of `place` (`check`: a copy event's, that looks only when jobs wait).
    pub fn wake_body(place: &Place, check: bool) -> String {
        let envelope = Continuation {
            ami_replicator: MESSAGE_VERSION,
            jobs: vec![],
            watch: vec![],
            wake: vec![place.clone()],
            check,
        };
        serde_json::to_string(&envelope).unwrap_or_default()
    }

    pub fn body(jobs: &[Job]) -> String {
        let envelope = Continuation {
            ami_replicator: MESSAGE_VERSION,
            jobs: jobs.to_vec(),
            watch: vec![],
            wake: vec![],
            check: false,
        };
        // Serialising plain strings and integers cannot fail.
        serde_json::to_string(&envelope).unwrap_or_default()
    }
}

#[cfg(test)]
#[path = "job_tests.rs"]
mod tests;
