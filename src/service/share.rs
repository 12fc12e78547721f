//! Grants: what a target account needs on the source to copy it, and the launch permissions of a copy
//! (AWS copies neither).

use super::{once, push, Invocation, Replicator};
use crate::core::errors::PortError;
use crate::core::ids::{AccountId, ImageId, Place, Region};
use crate::core::image::{ImageInfo, LaunchPermission, Tag};
use crate::core::job::Job;
use crate::core::protection::{self, Protection};
use crate::core::provenance::SHARED_TAG;
use crate::core::share;
use crate::ports::{Ec2, Ec2Regions, ImageBuilder, Queue};
use futures::future::join_all;
use std::collections::BTreeMap;
use tracing::{info, warn};

/// New reads of sources' launch permissions one invocation makes per source region. DescribeImageAttribute draws
/// from the region's bucket of non-mutating calls (100, refilled 20 per second), which every concurrent
/// invocation shares and every share of a copy of another source needs: half of it for each of the template's
/// two invocations at once. A copy beyond this is shared [`crate::core::step::PACED_RETRY_SECONDS`] later instead of being refused.
pub const SOURCE_READS_PER_INVOCATION: u32 = 50;

/// Takes one of `budget` calls for `key` in `spent`; `false` when none is left.
fn spend<K: Ord + Clone>(spent: &std::sync::Mutex<std::collections::BTreeMap<K, u32>>, key: &K, budget: u32) -> bool {
    let mut spent = spent.lock().unwrap_or_else(|e| e.into_inner());
    let n = spent.entry(key.clone()).or_default();
    *n += 1;
    *n <= budget
}

impl<R: Ec2Regions, Q: Queue, B: ImageBuilder> Replicator<R, Q, B> {
    /// For a target account's job: lets that account read the source (a launch permission on the image and
    /// createVolumePermission on each of its snapshots), once per source, account and invocation. Idempotent:
    /// granting again what is granted is success. The snapshots are read from the source itself, never taken
    /// from a message. Nothing to do for this account's own jobs, nor for a source of a trusted account (only
    /// its owner can share it).
    pub(super) async fn grant_copy_access(
        &self,
        job: &Job,
        home: &AccountId,
        invocation: &Invocation,
    ) -> Result<(), PortError> {
        let Some(account) = &job.account else { return Ok(()) };
        let key = (job.source_image.clone(), job.source_region.clone(), account.clone());
        once(&invocation.grants, key)
            .get_or_init(|| async {
                let source = self.ec2.region(&job.source_region);
                let image = self.source_image(&job.source_image, &job.source_region, invocation).await?.ok_or_else(|| {
                        PortError::from_code("InvalidAMIID.NotFound", format!("source {} not found", job.source_image))
                    })?;
                if image.owner.as_ref() != Some(home) {
                    info!(grantee = %account, owner = ?image.owner.as_ref().map(AccountId::as_str),
                        "source of a trusted account: its owner must share it and its snapshots with the target account");
                    return Ok(());
                }
                source.add_launch_permissions(&job.source_image, &[LaunchPermission::Account(account.clone())]).await?;
                for snapshot in &image.snapshots {
                    source.add_create_volume_permission(snapshot, account).await?;
                }
                info!(grantee = %account, snapshots = image.snapshots.len(),
                    "source shared for copying: launch permission and createVolumePermission granted");
                Ok(())
            })
            .await
            .clone()
    }

    /// Marks the copies shared in this invocation, one CreateTags per place (and per 1,000 copies). Copy events and
    /// jobs find them done (no second ModifyImageAttribute), the watch of a source sees which copies are done, and
    /// the sweep re-applies the share to recent copies without the mark. Best effort: without the mark, a later
    /// look at a copy shares it again (idempotent, one more call).
    pub(super) async fn mark_shared(&self, invocation: &Invocation) {
        let shared = std::mem::take(&mut *invocation.shared.lock().unwrap_or_else(|e| e.into_inner()));
        let mut by_place: BTreeMap<Place, Vec<ImageId>> = BTreeMap::new();
        for (place, copy) in shared {
            let copies = by_place.entry(place).or_default();
            if !copies.contains(&copy) {
                copies.push(copy);
            }
        }
        join_all(by_place.into_iter().map(|(place, copies)| async move {
            let marked = match self.ec2.at(&place) {
                Ok(ec2) => ec2.add_tags(&copies, &[Tag::new(SHARED_TAG, "true")]).await,
                Err(e) => Err(e),
            };
            if let Err(e) = marked {
                warn!(region = %place.region, place = %place, copies = copies.len(), error = %e,
                    phase = "share", "could not mark the copies as shared");
            }
        }))
        .await;
    }

    /// A source as this account sees it, read at most once per source and invocation.
    pub(super) async fn source_image(
        &self,
        source: &ImageId,
        region: &Region,
        invocation: &Invocation,
    ) -> Result<Option<ImageInfo>, PortError> {
        once(&invocation.sources, (source.clone(), region.clone()))
            .get_or_init(|| async { self.ec2.region(region).describe_image(source).await })
            .await
            .clone()
    }

    /// Applies launch permissions to an available copy. The source's permissions are read once per source
    /// per invocation.
    pub(super) async fn share(
        &self,
        ec2: &super::PlaceEc2<R::Ec2>,
        job: &Job,
        copy: &ImageId,
        home: &AccountId,
        invocation: &Invocation,
    ) -> Result<(), PortError> {
        let settings = self.settings.for_job(job);
        let policy = &settings.rule.share;
        // Between its calls, a share stops at the invocation's cut-off: the job comes back a few seconds later and
        // the share, idempotent, is applied again.
        let on_time = || match self.past_cutoff(invocation) {
            true => Err(PortError::paced("the invocation's deadline is near: the share goes on in the next one")),
            false => Ok(()),
        };
        let source_permissions = if policy.copy_source_permissions {
            let cell = once(&invocation.permissions, (job.source_image.clone(), job.source_region.clone()));
            if !cell.initialized() && !spend(&invocation.source_reads, &job.source_region, SOURCE_READS_PER_INVOCATION)
            {
                return Err(PortError::paced(format!(
                    "this invocation read {SOURCE_READS_PER_INVOCATION} sources' launch permissions in {} already",
                    job.source_region
                )));
            }
            let read = cell
                .get_or_init(|| async {
                    self.ec2.region(&job.source_region).launch_permissions(&job.source_image).await
                })
                .await
                .clone();
            match read {
                Ok(permissions) => permissions,
                // The source was deregistered after its copy finished: the copy is an independent AMI and still
                // gets the configured grants; there are no source permissions left to copy.
                Err(e) if matches!(e.code.as_str(), "InvalidAMIID.NotFound" | "InvalidAMIID.Unavailable") => {
                    warn!(copy = %copy, error = %e, "the source is gone: only the configured launch permissions apply");
                    Vec::new()
                }
                Err(e) => return Err(e),
            }
        } else {
            Vec::new()
        };
        on_time()?;
        if let Some(source_time) = &job.deprecation_time {
            // Part of the share: a copy is done only once it is deprecated as its source is (retried otherwise).
            // EC2 refuses a time in the past: a source already deprecated gets a copy deprecated at once.
            let time = share::deprecation_time(source_time, self.now() as i64);
            ec2.enable_deprecation(copy, &time).await?;
            info!(copy = %copy, deprecate_at = %time, source_deprecated_at = %source_time, "deprecation set as on the source");
        }
        // CopyImage does not carry deregistration protection over: a protected source's copy is protected too.
        let source = self.source_image(&job.source_image, &job.source_region, invocation).await.ok().flatten();
        if let Some(cooldown) = source.and_then(|s| protection::mirror(s.traits.protection, Protection::Off)) {
            ec2.enable_deregistration_protection(copy, cooldown).await?;
            info!(copy = %copy, cooldown, "deregistration protection enabled as on the source");
        }
        let owner = job.place().owner(home).clone();
        let decision = share::decide(&source_permissions, policy, &owner, &settings.rule.target_accounts);
        if decision.public_withheld {
            warn!(copy = %copy, "source is public, but ALLOW_PUBLIC is not true: the copy is not made public");
        }
        on_time()?;
        if !decision.grants.is_empty() {
            ec2.add_launch_permissions(copy, &decision.grants).await?;
            info!(copy = %copy, grants = ?decision.grants.iter().map(ToString::to_string).collect::<Vec<_>>(), "launch permissions applied");
        }
        on_time()?;
        if settings.rule.share_snapshots {
            share_snapshots(ec2, copy, &decision.grants).await?;
        }
        on_time()?;
        if let Some(template) = &settings.rule.ssm_parameter_template {
            self.put_parameter(ec2, template, job, copy).await?;
        }
        if let Some(template) = settings.rule.launch_templates.get(&job.place()) {
            self.update_launch_template(ec2, template, job, copy, settings.rule.launch_template_set_default).await?;
        }
        // Retention runs for this copy's family at its place at the end of the invocation (RETAIN_COPIES).
        if let Some(policy) = &settings.rule.retention {
            let source = self.source_image(&job.source_image, &job.source_region, invocation).await.ok().flatten();
            if let Some(family) = source.as_ref().and_then(|s| s.tag(&policy.family_tag)) {
                push(&invocation.retain, (job.place(), family.to_string(), policy.clone(), settings.rule.in_use_days));
            }
        }
        // Every share effect succeeded: only now is the copy to be marked done, in EC2 (at the end of the
        // invocation, one CreateTags per place for all its copies: [`Self::mark_shared`]).
        push(&invocation.shared, (job.place(), copy.clone()));
        Ok(())
    }
}

/// SHARE_SNAPSHOTS: createVolumePermission on the copy's snapshots (read from EC2) for every account the copy is
/// shared with, so that they can copy it onward. Never the group `all`; organizations and OUs cannot be given
/// snapshots (EC2 takes accounts only). A copy encrypted with the AWS managed key `aws/ebs` cannot have its
/// snapshots shared: logged, and the copy stays shared for launching.
async fn share_snapshots<E: Ec2>(ec2: &E, copy: &ImageId, grants: &[LaunchPermission]) -> Result<(), PortError> {
    let accounts: Vec<&AccountId> = grants
        .iter()
        .filter_map(|g| match g {
            LaunchPermission::Account(a) => Some(a),
            _ => None,
        })
        .collect();
    if accounts.is_empty() {
        return Ok(());
    }
    let snapshots: Vec<_> =
        ec2.describe_own_images(std::slice::from_ref(copy)).await?.into_iter().flat_map(|i| i.snapshots).collect();
    for snapshot in &snapshots {
        for account in &accounts {
            match ec2.add_create_volume_permission(snapshot, account).await {
                Ok(()) => {}
                Err(e) if e.code == "OperationNotPermitted" => {
                    warn!(copy = %copy, snapshot = %snapshot, error = %e,
                        "the copy's snapshots cannot be shared (encrypted with aws/ebs): it can be launched, not copied onward; configure a key of your own (KMS_KEY_IDS) for onward copies");
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
    }
    info!(copy = %copy, snapshots = snapshots.len(), accounts = accounts.len(), "snapshots shared for onward copies");
    Ok(())
}
