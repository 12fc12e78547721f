//! What the replicator needs to know from the configuration, and what messages are checked against.

use crate::core::ids::{AccountId, Region};
use crate::core::image::ImageInfo;
use crate::core::image::Tag;
use crate::core::job::Job;
use crate::core::plan::Skip;
use crate::core::policy::JobVerdict;
use crate::core::policy::Policy;
use crate::core::provenance::{is_replica, SOURCE_IMAGE_TAG};
use crate::core::rules::EncryptionPolicy;
use crate::core::ruleset::{self, Rule};
use crate::core::share::SharePolicy;
use crate::core::step::StepPolicy;
use std::borrow::Cow;

/// JOB_MAX_AGE_HOURS when unset: three days, far beyond any copy (AWS's time-based copies take at most 48 h).
pub const DEFAULT_JOB_MAX_AGE_HOURS: u32 = 72;

/// What the replicator needs to know from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// REPLICATION_RULES; empty: the variables below form the one rule. With rules, the fields below are what
    /// the whole deployment covers (every rule's regions, accounts, owners), and each job uses its rule's.
    pub rules: Vec<Rule>,
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
    /// SHARE_SNAPSHOTS: the accounts a copy is shared with also get createVolumePermission on its snapshots, so
    /// that they can copy it onward (never the group `all`).
    pub share_snapshots: bool,
    /// RETAIN_COPIES, FAMILY_TAG, RETAIN_DRY_RUN; `None`: every copy is kept.
    pub retention: Option<crate::core::retention::Retention>,
    /// LAUNCH_TEMPLATES: per place, the launch template that gets a version with each shared copy.
    pub launch_templates: std::collections::BTreeMap<crate::core::ids::Place, String>,
    /// LAUNCH_TEMPLATE_SET_DEFAULT: that version becomes the template's default.
    pub launch_template_set_default: bool,
    /// DISABLE_COPIES_WITH_SOURCE: a source disabled disables its available copies (those nothing uses); enabled
    /// again, its disabled copies are enabled and shared again (enabling restores no launch permission).
    pub disable_copies_with_source: bool,
    /// IN_USE_DAYS: a copy some account launched within this many days (EC2's LastLaunchedTime) is in use.
    pub in_use_days: u32,
    /// MAX_MESSAGE_BYTES: the work queue's MaximumMessageSize; continuations and batches are packed under it.
    pub max_message_bytes: usize,
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

impl Settings {
    /// The rule for a source read from EC2 (`None` without REPLICATION_RULES: the variables are the one rule),
    /// or why it is not replicated: one of our copies, or no rule matches.
    pub fn rule_for(&self, image: &ImageInfo, region: &Region, home: &AccountId) -> Result<Option<&Rule>, Skip> {
        if self.rules.is_empty() {
            return Ok(None);
        }
        if is_replica(image) {
            return Err(Skip::IsReplica { of: image.tag(SOURCE_IMAGE_TAG).unwrap_or_default().to_string() });
        }
        match ruleset::select(&self.rules, image, region, home) {
            Ok(rule) => Ok(Some(rule)),
            Err(why) => Err(Skip::NoRule { why: why.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ") }),
        }
    }

    /// The settings of one rule: its match and treatment in place of the deployment's.
    pub fn under(&self, rule: Option<&Rule>) -> Cow<'_, Settings> {
        let Some(rule) = rule else { return Cow::Borrowed(self) };
        let t = &rule.treatment;
        Cow::Owned(Settings {
            rules: Vec::new(),
            target_regions: t.target_regions.clone(),
            target_accounts: t.target_accounts.clone(),
            trusted_source_accounts: rule.matcher.owners.clone(),
            source_regions: if rule.matcher.regions.is_empty() {
                self.source_regions.clone()
            } else {
                rule.matcher.regions.clone()
            },
            tag_filter: None,
            share: t.share.clone(),
            encryption: t.encryption.clone(),
            description_template: t.description_template.clone(),
            extra_tags: t.extra_tags.clone(),
            ssm_parameter_template: t.ssm_parameter_template.clone(),
            copy_completion_minutes: t.copy_completion_minutes,
            share_snapshots: t.share_snapshots,
            retention: t.retention.clone(),
            launch_templates: t.launch_templates.clone(),
            launch_template_set_default: t.launch_template_set_default,
            disable_copies_with_source: t.disable_copies_with_source,
            in_use_days: t.in_use_days,
            step: self.step.clone(),
            ..*self
        })
    }

    /// The settings for a source read from EC2: its rule's, or why it is not replicated.
    pub fn for_source(
        &self,
        image: &ImageInfo,
        region: &Region,
        home: &AccountId,
    ) -> Result<(Cow<'_, Settings>, Option<&str>), Skip> {
        let rule = self.rule_for(image, region, home)?;
        Ok((self.under(rule), rule.map(|r| r.name.as_str())))
    }

    /// The settings of an admitted job (its rule was set by admission, from the source as EC2 shows it).
    pub fn for_job(&self, job: &Job) -> Cow<'_, Settings> {
        if self.rules.is_empty() {
            return Cow::Borrowed(self);
        }
        match job.rule.as_deref().and_then(|name| self.rules.iter().find(|r| r.name == name)) {
            Some(rule) => self.under(Some(rule)),
            None => {
                tracing::warn!(rule = ?job.rule, "a job without a rule of this configuration; nothing it asks of a rule is done");
                Cow::Owned(self.narrowest())
            }
        }
    }

    /// Every rule a job must pass before any call at its place (`core::policy::Policy::admit_job`), under the
    /// rule that matches its source as EC2 shows it; the admitted job carries that rule's name.
    pub fn admit_job(&self, job: &Job, source: Option<&ImageInfo>, home: &AccountId, now: i64) -> JobVerdict {
        let rule = match source.map(|s| self.rule_for(s, &job.source_region, home)) {
            Some(Ok(rule)) => rule,
            Some(Err(skip)) => {
                if let Err(reason) = self.policy().check_job(job) {
                    return JobVerdict::Refuse(reason);
                }
                return JobVerdict::Refuse(format!("source {}: {skip}; the job is refused", job.source_image));
            }
            None => None,
        };
        match self.under(rule).policy().admit_job(job, source, home, now) {
            JobVerdict::Proceed(mut job) => {
                job.rule = rule.map(|r| r.name.clone());
                JobVerdict::Proceed(job)
            }
            JobVerdict::Refuse(reason) => match rule {
                Some(rule) => {
                    JobVerdict::Refuse(format!("rule {} (the rule matching the source): {reason}", rule.name))
                }
                None => JobVerdict::Refuse(reason),
            },
            stop => stop,
        }
    }

    /// No destination, no sharing beyond the owner, no outputs: for a job no rule of this configuration names.
    fn narrowest(&self) -> Settings {
        Settings {
            rules: Vec::new(),
            target_regions: Vec::new(),
            target_accounts: Vec::new(),
            trusted_source_accounts: Vec::new(),
            source_regions: self.source_regions.clone(),
            tag_filter: None,
            share: SharePolicy::default(),
            encryption: self.encryption.clone(),
            description_template: None,
            extra_tags: Vec::new(),
            ssm_parameter_template: None,
            copy_completion_minutes: self.copy_completion_minutes,
            share_snapshots: false,
            retention: None,
            launch_templates: Default::default(),
            launch_template_set_default: false,
            disable_copies_with_source: false,
            step: self.step.clone(),
            ..*self
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
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
            share_snapshots: false,
            retention: None,
            launch_templates: Default::default(),
            launch_template_set_default: false,
            disable_copies_with_source: false,
            in_use_days: DEFAULT_IN_USE_DAYS,
            max_message_bytes: crate::core::messages::DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// IN_USE_DAYS when unset: Image Builder's lifecycle policies exclude AMIs launched in a recent period too.
pub const DEFAULT_IN_USE_DAYS: u32 = 30;
