//! What the replicator needs to know from the configuration, and what messages are checked against.

use crate::core::ids::{AccountId, Region};
use crate::core::image::Tag;
use crate::core::policy::Policy;
use crate::core::rules::EncryptionPolicy;
use crate::core::share::SharePolicy;
use crate::core::step::StepPolicy;

/// JOB_MAX_AGE_HOURS when unset: three days, far beyond any copy (AWS's time-based copies take at most 48 h).
pub const DEFAULT_JOB_MAX_AGE_HOURS: u32 = 72;

/// What the replicator needs to know from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub target_regions: Vec<Region>,
    /// TARGET_ACCOUNTS: accounts that get copies of their own (their roles are the adapter's business).
    pub target_accounts: Vec<AccountId>,
    /// TRUSTED_SOURCE_ACCOUNTS: accounts whose images, shared with this one, are replicated too.
    pub trusted_source_accounts: Vec<AccountId>,
    /// SOURCE_REGIONS: where the sweep looks for images (default: the function's own region).
    pub source_regions: Vec<Region>,
    /// SWEEP_LOOKBACK_HOURS: the sweep considers images created this recently.
    pub sweep_lookback_hours: u32,
    /// JOB_MAX_AGE_HOURS: a job older than this (capacity waits and throttling included) is dead-lettered.
    pub job_max_age_hours: u32,
    pub tag_filter: Option<Tag>,
    /// Concurrent copies to allow per place (MAX_CONCURRENT_COPIES_PER_REGION, per account and region).
    pub max_copies_per_region: u32,
    pub step: StepPolicy,
    pub share: SharePolicy,
    pub encryption: EncryptionPolicy,
    /// COPY_DESCRIPTION_TEMPLATE; `None`: copies keep the source's description.
    pub description_template: Option<String>,
    /// EXTRA_TAGS, put on every copy and its snapshots.
    pub extra_tags: Vec<Tag>,
    /// DEREGISTER_COPIES_WITH_SOURCE: when a source is deregistered, deregister its available copies too and
    /// delete their snapshots (pending copies are always stopped).
    pub deregister_copies_with_source: bool,
    /// COPY_EVENTS: copy events are forwarded; a shared copy is marked so (one CreateTags), which lets the job
    /// still waiting for it finish without sharing again. Without events the mark would only cost a call.
    pub copy_events: bool,
    /// COPY_COMPLETION_MINUTES: time-based copies that finish within this many minutes (15..2880, steps of 15);
    /// `None`: best effort. Their throughput quota is capacity, like the concurrent-copy limit.
    pub copy_completion_minutes: Option<u32>,
    /// PUBLISH_EVENTS: completion events on the home region's default event bus.
    pub publish_events: bool,
    /// SSM_PARAMETER_TEMPLATE: each shared copy's id is put in this parameter of its place.
    pub ssm_parameter_template: Option<String>,
}

impl Settings {
    /// What messages are checked against: they may only narrow it.
    pub fn policy(&self) -> Policy<'_> {
        Policy {
            target_regions: &self.target_regions,
            target_accounts: &self.target_accounts,
            trusted: &self.trusted_source_accounts,
            tag_filter: self.tag_filter.as_ref(),
            source_regions: &self.source_regions,
            encryption: &self.encryption,
            job_max_age_seconds: i64::from(self.job_max_age_hours) * 3600,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            target_regions: Vec::new(),
            target_accounts: Vec::new(),
            trusted_source_accounts: Vec::new(),
            source_regions: Vec::new(),
            sweep_lookback_hours: 48,
            job_max_age_hours: DEFAULT_JOB_MAX_AGE_HOURS,
            tag_filter: None,
            max_copies_per_region: 100,
            step: StepPolicy::default(),
            share: SharePolicy { copy_source_permissions: true, ..SharePolicy::default() },
            encryption: EncryptionPolicy::default(),
            description_template: None,
            extra_tags: Vec::new(),
            deregister_copies_with_source: false,
            copy_events: false,
            copy_completion_minutes: None,
            publish_events: false,
            ssm_parameter_template: None,
        }
    }
}
