//! Retention (RETAIN_COPIES, FAMILY_TAG, RETAIN_DRY_RUN): after a copy of a family is shared at a place, and in the
//! sweep, that family's older copies there are retired: observe (the family's copies in one DescribeImages, what
//! uses the candidates in one DescribeImageReferences), decide in `core::retention`, act (DeregisterImage with
//! DeleteAssociatedSnapshots: the image and its snapshots in one call). Best effort: a failure is logged, and the
//! next share or sweep tries again.

use super::{push, Invocation, Replicator};
use crate::core::errors::PortError;
use crate::core::facts::{Fact, Retired};
use crate::core::ids::{AccountId, Place};
use crate::core::retention::{self, Fate, Observed, Retention};
use crate::ports::{Ec2, Ec2Regions, ImageBuilder, Queue};
use futures::future::join_all;
use tracing::{info, warn, Instrument};

impl<R: Ec2Regions, Q: Queue, B: ImageBuilder> Replicator<R, Q, B> {
    /// Retention for each (place, family) touched, once each.
    pub(super) async fn retain(
        &self,
        mut touched: Vec<(Place, String, Retention, u32)>,
        home: &AccountId,
        invocation: &Invocation,
    ) {
        touched.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        touched.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        join_all(touched.into_iter().map(|(place, family, policy, in_use_days)| {
            let span = tracing::info_span!("retention", region = %place.region, phase = "retention",
                account = place.account.as_ref().map_or("", |a| a.as_str()), family = %family);
            async move {
                if let Err(e) = self.retain_family(&place, &family, &policy, in_use_days, home, invocation).await {
                    warn!(error = %e, "retention not done now; the next share or sweep tries again");
                }
            }
            .instrument(span)
        }))
        .await;
    }

    async fn retain_family(
        &self,
        place: &Place,
        family: &str,
        policy: &Retention,
        in_use_days: u32,
        home: &AccountId,
        invocation: &Invocation,
    ) -> Result<(), PortError> {
        let ec2 = self.at(place, home)?;
        let owner = place.owner(home).clone();
        let copies = ec2.family_copies(&policy.family_tag, family).await?;
        let mut seen: Vec<Observed> = copies.iter().map(Observed::of).collect();
        // Only the copies that would go are looked up: one DescribeImageReferences for all of them.
        let candidates: Vec<_> = retention::decide(&seen, &policy.family_tag, policy.copies, &owner, &place.region)
            .into_iter()
            .filter(|(_, f)| matches!(f, Fate::Retire { .. }))
            .map(|(id, _)| id)
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        // In use: what DescribeImageReferences names, and a launch by any account within IN_USE_DAYS.
        let mut uses = ec2.image_references(&candidates).await?;
        uses.extend(crate::core::lifecycle::launched_within(&copies, self.now() as i64, in_use_days));
        for (image, user) in uses {
            if let Some(o) = seen.iter_mut().find(|o| o.image.id == image) {
                o.used_by.push(user);
            }
        }
        for (copy, fate) in retention::decide(&seen, &policy.family_tag, policy.copies, &owner, &place.region) {
            match fate {
                Fate::Keep(retention::Kept::Retained) => {}
                Fate::Keep(why) => info!(copy = %copy, kept = ?why, "older copy kept"),
                Fate::Retire { reason, .. } if policy.dry_run => {
                    info!(copy = %copy, reason = %reason, "would retire the copy (RETAIN_DRY_RUN)")
                }
                Fate::Retire { snapshots, reason } => {
                    // One call for the image and its snapshots: a fault can leave nothing half done.
                    let left = ec2.deregister_with_snapshots(&copy).await?;
                    if !left.is_empty() {
                        warn!(copy = %copy, left = ?left, "copy retired, but EC2 kept some of its snapshots");
                    }
                    info!(copy = %copy, snapshots = snapshots.len(), reason = %reason, "copy retired");
                    let retired = Retired {
                        copy,
                        account: owner.clone(),
                        region: place.region.clone(),
                        family_tag: policy.family_tag.clone(),
                        family: family.to_string(),
                        reason,
                    };
                    push(&invocation.facts, Fact::CopyRetired(Box::new(retired)));
                }
            }
        }
        Ok(())
    }
}
