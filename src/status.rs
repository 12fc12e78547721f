//! The status command's observation (`ami-replicator-ctl status`): what EC2 and the dead-letter queue show of one
//! source's replication, gathered over the ports (so the simulator and the emulator answer it as AWS does),
//! then judged by `core::status`. One DescribeImages for the source, one DescribeImageAttribute for its
//! permissions, per place one provenance lookup and one DescribeImageAttribute of the available copy (with
//! RETAIN_COPIES one DescribeImages of the source's family, with LAUNCH_TEMPLATES one
//! DescribeLaunchTemplateVersions), and the dead-letter queue read without consuming it.

use crate::core::ids::{AccountId, ImageId, Region};
use crate::core::plan;
use crate::core::provenance::is_our_copy_at;
use crate::core::share;
use crate::core::status::{self, PlaceObservation, Report};
use crate::ports::{CopyRecords, Ec2, Ec2Regions, Queue};
use crate::service::{DeploymentSettings, PlaceEc2};
use futures::future::join_all;
use std::sync::Arc;

/// The status of `source` (in `source_region`) as the configuration `settings` wants it, at `now`. `records`: the
/// function's record of its copies (the admission table), which tells its copies in the source's own region.
#[allow(clippy::too_many_arguments)]
pub async fn status<R: Ec2Regions, Q: Queue>(
    ec2: &R,
    queue: &Q,
    records: &Arc<dyn CopyRecords>,
    settings: &DeploymentSettings,
    home: &AccountId,
    source: &ImageId,
    source_region: &Region,
    now: i64,
) -> Report {
    let at_source = ec2.region(source_region);
    let (image, source_permissions) =
        tokio::join!(at_source.describe_image(source), at_source.launch_permissions(source));
    let image = image.ok().flatten();
    // A source that is gone has no permissions left to copy: only the configured ones are wanted.
    let source_permissions = source_permissions.unwrap_or_default();
    // The source's rule (REPLICATION_RULES), from the source as EC2 shows it; a source that is gone (or matches
    // no rule) is looked for wherever any rule would have put copies.
    let (settings, rule) = match image.as_ref().map(|i| settings.for_source(i, source_region, home)) {
        Some(Ok((s, name))) => (s, name.map(str::to_string)),
        Some(Err(skip)) if !settings.rules.is_empty() => {
            (std::borrow::Cow::Borrowed(settings), Some(format!("none ({skip})")))
        }
        _ => (std::borrow::Cow::Borrowed(settings), None),
    };
    let settings = settings.as_ref();
    let places =
        plan::configured_places(source_region, &settings.rule.target_regions, &settings.rule.target_accounts, home);
    // The source's family (RETAIN_COPIES): the value of its family tag, as EC2 shows the source.
    let family = settings.rule.retention.as_ref().and_then(|policy| {
        let value = image.as_ref()?.tag(&policy.family_tag)?;
        Some((policy.clone(), value.to_string()))
    });
    let observed = join_all(places.into_iter().map(|place| {
        let (source_permissions, family) = (&source_permissions, &family);
        async move {
            let owner = place.owner(home).clone();
            let wanted =
                share::decide(source_permissions, &settings.rule.share, &owner, &settings.rule.target_accounts).grants;
            let ec2 = match ec2.at(&place) {
                Ok(ec2) => PlaceEc2::new(ec2, place.clone(), Some(home), records.clone()),
                Err(e) => {
                    let copies = Err(e.to_string());
                    return PlaceObservation { place, copies, permissions: None, wanted, family: None, template: None };
                }
            };
            let copies = ec2.find_copies(std::slice::from_ref(source)).await.map_err(|e| e.to_string());
            let available = copies.as_ref().ok().and_then(|c| {
                c.iter()
                    .filter(|i| i.state == crate::core::image::ImageState::Available)
                    .find(|i| is_our_copy_at(i, source, source_region, &place, home))
                    .map(|i| i.id.clone())
            });
            let permissions = match available {
                Some(copy) => Some(ec2.launch_permissions(&copy).await.map_err(|e| e.to_string())),
                None => None,
            };
            let family = match family {
                Some((policy, value)) => {
                    let copies = ec2.family_copies(&policy.family_tag, value).await.map_err(|e| e.to_string());
                    Some((policy.clone(), value.clone(), copies))
                }
                None => None,
            };
            let template = match settings.rule.launch_templates.get(&place) {
                Some(name) => Some((name.clone(), ec2.launch_template_versions(name).await.map_err(|e| e.to_string()))),
                None => None,
            };
            PlaceObservation { place, copies, permissions, wanted, family, template }
        }
    }))
    .await;
    let dead_letters = match queue.peek_dead_letters().await {
        Ok(list) => list.into_iter().filter(|d| d.body.contains(source.as_str())).map(|d| d.reason).collect(),
        Err(e) => vec![format!("(the dead-letter queue could not be read: {e})")],
    };
    let mut report =
        status::assess(source, source_region, image.as_ref().map(|i| &i.state), &observed, dead_letters, home, now);
    report.rule = rule;
    report
}
