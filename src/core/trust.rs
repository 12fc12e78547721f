//! Every rule a message and a job must pass, in one place. A message (work item, event, continuation, watch) only
//! says which source and place to look at: anyone allowed to send to the queue can write one, and the product's
//! own continuations can be read and edited. So no field of a message can add a region, an account or a key,
//! turn off encryption the operator asked for, or name a source the configuration does not replicate; and every
//! fact that decides an effect (the source's owner, tags, name, size, deprecation; which image is the copy) is
//! read from EC2 and judged here, whatever message carried the job. Pure.

use super::copy_rules::{self, EncryptionSettings};
use super::ids::{AccountId, Place, Region};
use super::image::{ImageInfo, Tag};
use super::job::{Job, Phase};
use super::plan::{self, Readiness, Skip};
use super::provenance::is_our_copy;

/// The configuration a message is checked against.
#[derive(Debug, Clone, Copy)]
pub struct MessageBounds<'a> {
    /// TARGET_REGIONS.
    pub target_regions: &'a [Region],
    /// TARGET_ACCOUNTS.
    pub target_accounts: &'a [AccountId],
    /// TRUSTED_SOURCE_ACCOUNTS.
    pub trusted: &'a [AccountId],
    /// IMAGE_TAG_FILTER.
    pub tag_filter: Option<&'a Tag>,
    /// SOURCE_REGIONS: the regions whose images are sources (empty: any, only where no region is configured).
    pub source_regions: &'a [Region],
    /// ENCRYPT_COPIES and KMS_KEY_IDS.
    pub encryption: &'a EncryptionSettings,
    /// JOB_MAX_AGE_HOURS, in seconds: a job older than this is dead-lettered.
    pub job_max_age_seconds: i64,
}

/// What the rules say of a source image read from EC2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceVerdict {
    /// Replicate it.
    Replicate,
    /// Not a source of this configuration (another owner, IMAGE_TAG_FILTER, one of our copies): log and end.
    Skip(Skip),
    /// A source that can never be copied as asked (Marketplace, encryption, failed): dead-letter with the reason.
    Refuse(String),
    /// Still pending: look again later.
    NotYet,
}

/// What becomes of a job (a continuation's, the fan-out's, the sweep's) before any call at its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobVerdict {
    /// Go on with this job: its facts about the source are EC2's, not the message's.
    Proceed(Box<Job>),
    /// Nothing to do, not a failure (the source is gone): log and end.
    Stop(String),
    /// The job can never be carried out: dead-letter with the reason.
    Refuse(String),
}

impl MessageBounds<'_> {
    /// A work item's `target_regions` must all be in TARGET_REGIONS; one that is not refuses the whole item, so
    /// that a typo never silently becomes a narrower replication.
    pub fn check_targets(&self, requested: Option<&[Region]>) -> Result<(), String> {
        let outside: Vec<&str> = requested
            .unwrap_or_default()
            .iter()
            .filter(|r| !self.target_regions.contains(r))
            .map(Region::as_str)
            .collect();
        if outside.is_empty() {
            return Ok(());
        }
        Err(format!(
            "target_regions {} not in TARGET_REGIONS ({}): a work item may only narrow the configured regions; \
             the item is refused whole and nothing was copied",
            outside.join(", "),
            join(self.target_regions)
        ))
    }

    /// `"encrypted": false` cannot turn off ENCRYPT_COPIES.
    pub fn check_encryption(&self, requested: Option<bool>) -> Result<(), String> {
        if self.encryption.encrypt_copies && requested == Some(false) {
            return Err("\"encrypted\": false is refused: ENCRYPT_COPIES requires every copy to be encrypted".into());
        }
        Ok(())
    }

    /// An image in `region` is a source only when SOURCE_REGIONS lists the region: the forwarders carry the
    /// events of destination regions, and an AMI built there is not a source unless its region is listed.
    pub fn check_source_region(&self, region: &Region) -> Result<(), String> {
        if self.source_regions.is_empty() || self.source_regions.contains(region) {
            return Ok(());
        }
        Err(format!("source region {region} is not in SOURCE_REGIONS ({})", join(self.source_regions)))
    }

    /// A continuation's job must name a place the configuration has: this account in a TARGET_REGIONS region,
    /// or a TARGET_ACCOUNTS account there or in the job's source region; and a source region that is one.
    pub fn check_job(&self, job: &Job) -> Result<(), String> {
        self.check_encryption(job.encrypt)?;
        self.check_source_region(&job.source_region).map_err(|e| format!("{e}; the job is refused"))?;
        self.check_place(&job.place(), &job.source_region).map_err(|e| format!("{e}; the job is refused"))
    }

    /// Whether the configuration gives a source in `source_region` a copy at `place`: a configured target
    /// account (in a destination region or the source region), or this account in a destination region.
    pub fn check_place(&self, place: &Place, source_region: &Region) -> Result<(), String> {
        match &place.account {
            Some(account) if !self.target_accounts.contains(account) => {
                Err(format!("account {account} is not in TARGET_ACCOUNTS"))
            }
            Some(_) if &place.region == source_region => Ok(()),
            _ if self.target_regions.contains(&place.region) => Ok(()),
            _ => Err(format!("region {} is not in TARGET_REGIONS", place.region)),
        }
    }

    /// The source rules, on the image as EC2 shows it: owner or trusted owner, IMAGE_TAG_FILTER, the loop guard,
    /// Marketplace, what encryption allows (`wanted` as from [`copy_rules::wanted_encryption`]), its state.
    pub fn judge_source(&self, image: &ImageInfo, home: &AccountId, wanted: Option<bool>) -> SourceVerdict {
        if let Some(skip) = plan::skip_reason(image, home, self.trusted, self.tag_filter) {
            // A Marketplace AMI shared with this account is not merely someone else's: say what to do.
            if let (Skip::NotOwned { .. }, Some(why)) = (&skip, copy_rules::cannot_copy(image, home, wanted)) {
                return SourceVerdict::Refuse(why);
            }
            return SourceVerdict::Skip(skip);
        }
        match plan::source_readiness(image) {
            Readiness::Ready => {}
            Readiness::NotYet => return SourceVerdict::NotYet,
            Readiness::Never(reason) => return SourceVerdict::Refuse(reason),
        }
        match copy_rules::cannot_copy(image, home, wanted) {
            Some(why) => SourceVerdict::Refuse(why),
            None => SourceVerdict::Replicate,
        }
    }

    /// Every rule a job must pass before any call at its place, whatever message carried it: its place and
    /// encryption wish narrow the configuration, it is not older than JOB_MAX_AGE_HOURS, and its source, as EC2
    /// shows it now (`source`; `None`: EC2 does not know it), passes the source rules. What the job knows of the
    /// source (name, description, size, encryption, virtualization, deprecation, creation date) is replaced by
    /// what EC2 says; a `since` in the future becomes `now`.
    pub fn admit_job(&self, job: &Job, source: Option<&ImageInfo>, home: &AccountId, now: i64) -> JobVerdict {
        if let Err(reason) = self.check_job(job) {
            return JobVerdict::Refuse(reason);
        }
        let since = job.since.map_or(now, |s| s.min(now));
        let age = now - since;
        if age > self.job_max_age_seconds {
            return JobVerdict::Refuse(format!(
                "the job is {} h old, older than JOB_MAX_AGE_HOURS ({} h): given up (capacity waits and throttling \
                 included); send a work item to try again",
                age / 3600,
                self.job_max_age_seconds / 3600
            ));
        }
        let Some(source) = source else {
            return JobVerdict::Stop(format!(
                "source {} in {} no longer exists: its replication stopped (copies already made stay)",
                job.source_image, job.source_region
            ));
        };
        let waiting = matches!(job.phase, Phase::Wait { .. });
        match self.judge_source(source, home, copy_rules::wanted_encryption(job.encrypt, self.encryption)) {
            SourceVerdict::Replicate => {}
            // A copy may already exist for a source that became disabled: it is still this source's copy.
            SourceVerdict::Refuse(_) | SourceVerdict::NotYet
                if waiting && source.state != super::image::ImageState::Pending => {}
            SourceVerdict::Skip(skip) => {
                return JobVerdict::Refuse(format!("source {}: {skip}; the job is refused", job.source_image))
            }
            SourceVerdict::Refuse(reason) => return JobVerdict::Refuse(reason),
            SourceVerdict::NotYet => {
                return JobVerdict::Stop(format!(
                    "source {} is still pending: its available event (or the sweep) starts its replication",
                    job.source_image
                ))
            }
        }
        let mut next = job.clone();
        next.since = Some(since);
        refresh_from_source(&mut next, source);
        JobVerdict::Proceed(Box::new(next))
    }

    /// Whether `image`, read from EC2 at `job`'s place with that place's credentials (`owner`: its account), is
    /// this product's copy of `job`'s source there (`provenance::verified_source`: EC2's record, the owner, the
    /// provenance tag, and in the source's own region the function's record).
    pub fn is_our_copy(image: &ImageInfo, job: &Job, owner: &AccountId) -> bool {
        is_our_copy(image, &job.source_image, &job.source_region, owner, &job.destination)
    }
}

/// What a job knows of its source, from the source itself.
pub fn refresh_from_source(job: &mut Job, source: &ImageInfo) {
    job.name = source.name.clone();
    job.description = source.description.clone();
    job.size_gib = source.size_gib;
    job.source_encrypted = source.traits.encrypted;
    job.paravirtual = source.traits.paravirtual;
    job.deprecation_time = source.traits.deprecation_time.clone();
    job.source_created = source.created.clone();
    job.source_tags = source.tags.clone();
    job.source_owner = source.owner.clone();
    job.instance_store = source.traits.instance_store;
}

fn join(regions: &[Region]) -> String {
    regions.iter().map(Region::as_str).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
#[path = "trust_tests.rs"]
mod tests;
