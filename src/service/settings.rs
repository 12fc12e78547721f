//! What the replicator needs to know from the configuration, and what messages are checked against.

use crate::core::ids::{AccountId, Region};
use crate::core::image::ImageInfo;
use crate::core::image::Tag;
use crate::core::job::Job;
use crate::core::plan::Skip;
use crate::core::provenance::{is_replica, SOURCE_IMAGE_TAG};
use crate::core::replication_rules::{self, Rule, RuleSettings};
use crate::core::step::JobLimits;
use crate::core::trust::JobVerdict;
use crate::core::trust::MessageBounds;
use std::borrow::Cow;

/// JOB_MAX_AGE_HOURS when unset: three days, far beyond any copy (AWS's time-based copies take at most 48 h).
pub const DEFAULT_JOB_MAX_AGE_HOURS: u32 = 72;

/// The deployment's settings: what the replicator needs to know from the configuration. A rule's settings are one
/// [`RuleSettings`]; everything else here is the deployment's alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentSettings {
    /// REPLICATION_RULES; empty: the variables form the one rule, [`DeploymentSettings::rule`].
    pub rules: Vec<Rule>,
    /// The settings jobs are treated with: without REPLICATION_RULES the one rule the variables form; with rules,
    /// what they cover together (every rule's regions and accounts), each job using its own rule's
    /// ([`DeploymentSettings::for_job`]).
    pub rule: RuleSettings,
    /// TRUSTED_SOURCE_ACCOUNTS: accounts whose images, shared with this one, are replicated too (a rule's
    /// `match.owners` in its view).
    pub trusted_source_accounts: Vec<AccountId>,
    /// SOURCE_REGIONS: where the sweep looks for images (default: the function's own region; a rule's
    /// `match.regions` in its view).
    pub source_regions: Vec<Region>,
    /// IMAGE_TAG_FILTER (a rule's `match.tags` in its view).
    pub tag_filter: Option<Tag>,
    /// SWEEP_LOOKBACK_HOURS: the sweep considers images created this recently.
    pub sweep_lookback_hours: u32,
    /// JOB_MAX_AGE_HOURS: a job older than this (capacity waits and throttling included) is dead-lettered.
    pub job_max_age_hours: u32,
    /// Concurrent copies to allow per place (MAX_CONCURRENT_COPIES_PER_REGION, per account and region).
    pub max_copies_per_region: u32,
    /// COPY_POLL_SECONDS and the limits of a job's life.
    pub step: JobLimits,
    /// DEREGISTER_COPIES_WITH_SOURCE: when a source is deregistered, deregister its available copies too and
    /// delete their snapshots (pending copies are always stopped).
    pub deregister_copies_with_source: bool,
    /// COPY_EVENTS: copy events are forwarded; a shared copy is marked so (one CreateTags), which lets the job
    /// still waiting for it finish without sharing again. Without events the mark would only cost a call.
    pub copy_events: bool,
    /// PUBLISH_EVENTS: completion events on the home region's default event bus.
    pub publish_events: bool,
    /// MAX_MESSAGE_BYTES: the work queue's MaximumMessageSize; continuations and batches are packed under it.
    pub max_message_bytes: usize,
}

impl DeploymentSettings {
    /// What messages are checked against: they may only narrow it.
    pub fn message_bounds(&self) -> MessageBounds<'_> {
        MessageBounds {
            target_regions: &self.rule.target_regions,
            target_accounts: &self.rule.target_accounts,
            trusted: &self.trusted_source_accounts,
            tag_filter: self.tag_filter.as_ref(),
            source_regions: &self.source_regions,
            encryption: &self.rule.encryption,
            job_max_age_seconds: i64::from(self.job_max_age_hours) * 3600,
        }
    }
}

impl DeploymentSettings {
    /// The rule for a source read from EC2 (`None` without REPLICATION_RULES: the variables are the one rule),
    /// or why it is not replicated: one of our copies, or no rule matches.
    pub fn rule_for(&self, image: &ImageInfo, region: &Region, home: &AccountId) -> Result<Option<&Rule>, Skip> {
        if self.rules.is_empty() {
            return Ok(None);
        }
        if is_replica(image) {
            return Err(Skip::IsReplica { of: image.tag(SOURCE_IMAGE_TAG).unwrap_or_default().to_string() });
        }
        match replication_rules::select(&self.rules, image, region, home) {
            Ok(rule) => Ok(Some(rule)),
            Err(why) => Err(Skip::NoRule { why: why.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ") }),
        }
    }

    /// The deployment with one rule's settings and match in place of its own.
    pub fn under(&self, rule: Option<&Rule>) -> Cow<'_, DeploymentSettings> {
        let Some(rule) = rule else { return Cow::Borrowed(self) };
        let regions = &rule.matcher.regions;
        let source_regions = if regions.is_empty() { self.source_regions.clone() } else { regions.clone() };
        Cow::Owned(self.with_rule(rule.settings.clone(), rule.matcher.owners.clone(), source_regions))
    }

    /// The deployment with `rule` as its one rule, matching sources of `trusted` (and this account) in
    /// `source_regions`. Every field is named: a new one cannot be forgotten here.
    fn with_rule(
        &self,
        rule: RuleSettings,
        trusted: Vec<AccountId>,
        source_regions: Vec<Region>,
    ) -> DeploymentSettings {
        let DeploymentSettings {
            rules: _,
            rule: _,
            trusted_source_accounts: _,
            source_regions: _,
            tag_filter: _,
            sweep_lookback_hours,
            job_max_age_hours,
            max_copies_per_region,
            step,
            deregister_copies_with_source,
            copy_events,
            publish_events,
            max_message_bytes,
        } = self;
        DeploymentSettings {
            rules: Vec::new(),
            rule,
            trusted_source_accounts: trusted,
            source_regions,
            tag_filter: None,
            sweep_lookback_hours: *sweep_lookback_hours,
            job_max_age_hours: *job_max_age_hours,
            max_copies_per_region: *max_copies_per_region,
            step: step.clone(),
            deregister_copies_with_source: *deregister_copies_with_source,
            copy_events: *copy_events,
            publish_events: *publish_events,
            max_message_bytes: *max_message_bytes,
        }
    }

    /// The settings for a source read from EC2: its rule's, or why it is not replicated.
    pub fn for_source(
        &self,
        image: &ImageInfo,
        region: &Region,
        home: &AccountId,
    ) -> Result<(Cow<'_, DeploymentSettings>, Option<&str>), Skip> {
        let rule = self.rule_for(image, region, home)?;
        Ok((self.under(rule), rule.map(|r| r.name.as_str())))
    }

    /// The rules (by name; `None`: the one rule of the variables) whose copies follow their source's disabling.
    pub fn rules_following_sources(&self) -> std::collections::BTreeSet<Option<String>> {
        if self.rules.is_empty() {
            return self.rule.disable_copies_with_source.then_some(None).into_iter().collect();
        }
        self.rules.iter().filter(|r| r.settings.disable_copies_with_source).map(|r| Some(r.name.clone())).collect()
    }

    /// The settings of an admitted job (its rule was set by admission, from the source as EC2 shows it).
    pub fn for_job(&self, job: &Job) -> Cow<'_, DeploymentSettings> {
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

    /// Every rule a job must pass before any call at its place (`core::trust::MessageBounds::admit_job`), under the
    /// rule that matches its source as EC2 shows it; the admitted job carries that rule's name.
    pub fn admit_job(&self, job: &Job, source: Option<&ImageInfo>, home: &AccountId, now: i64) -> JobVerdict {
        let rule = match source.map(|s| self.rule_for(s, &job.source_region, home)) {
            Some(Ok(rule)) => rule,
            Some(Err(skip)) => {
                if let Err(reason) = self.message_bounds().check_job(job) {
                    return JobVerdict::Refuse(reason);
                }
                return JobVerdict::Refuse(format!("source {}: {skip}; the job is refused", job.source_image));
            }
            None => None,
        };
        match self.under(rule).message_bounds().admit_job(job, source, home, now) {
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
    fn narrowest(&self) -> DeploymentSettings {
        self.with_rule(self.rule.narrowest(), Vec::new(), self.source_regions.clone())
    }
}

impl Default for DeploymentSettings {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            rule: RuleSettings::unset(),
            trusted_source_accounts: Vec::new(),
            source_regions: Vec::new(),
            tag_filter: None,
            sweep_lookback_hours: 48,
            job_max_age_hours: DEFAULT_JOB_MAX_AGE_HOURS,
            max_copies_per_region: 100,
            step: JobLimits::default(),
            deregister_copies_with_source: false,
            copy_events: false,
            publish_events: false,
            max_message_bytes: crate::core::messages::DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

pub use crate::core::replication_rules::DEFAULT_IN_USE_DAYS;
