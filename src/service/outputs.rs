//! What the product tells its consumers: the SSM parameter naming the newest copy of each place
//! (SSM_PARAMETER_TEMPLATE), completion events for each copy, and a source's `AMI Replication Finished` once the
//! watch of its replication sees every place done (PUBLISH_EVENTS). None of it changes what happens to a copy:
//! a refused parameter is logged, a failed publication is logged (a Finished one is retried by its watch).

use super::{BatchReport, Effect, Replicator};
use crate::core::errors::{ErrorClass, PortError};
use crate::core::facts::{Completion, Fact, Failure, Retired};
use crate::core::ids::{AccountId, ImageId, Place, Region};
use crate::core::job::{Continuation, Job};
use crate::core::parameters;
use crate::core::provenance::verified_source;
use crate::core::replication_rules::RULE_TAG;
use crate::core::time::format_rfc3339;
use crate::core::watch::{self, Outcome, Watch};
use crate::ports::{Ec2, Ec2Regions, ImageBuilder, OutgoingEvent, OutgoingMessage, Queue};
use futures::future::join_all;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use tracing::{error, info, warn};

pub const COMPLETED: &str = "AMI Replication Completed";
pub const FAILED: &str = "AMI Replication Failed";
pub const FINISHED: &str = "AMI Replication Finished";
pub const RETIRED: &str = "AMI Copy Retired";

impl<R: Ec2Regions, Q: Queue, B: ImageBuilder> Replicator<R, Q, B> {
    /// Points the place's parameter at `copy`, unless it names a copy of a newer source. A passing fault is
    /// returned (the share is retried); a permanent refusal is logged and the copy counts as shared.
    pub(super) async fn put_parameter(
        &self,
        ec2: &super::PlaceEc2<R::Ec2>,
        template: &str,
        job: &Job,
        copy: &ImageId,
    ) -> Result<(), PortError> {
        let place = job.place();
        let name = parameters::parameter_name(template, &job.source_image, &job.source_region, job.name.as_deref());
        let result = async {
            let current = self.outputs.parameter(&place, &name).await?;
            let theirs = match current.as_deref().and_then(|v| ImageId::parse(v).ok()) {
                Some(id) if &id == copy => return Ok(false),
                // Only a verified copy's date counts (bounded by its own creation): a forged image or date never
                // keeps the parameter from the newest copy.
                Some(id) => ec2
                    .describe_own_images(&[id])
                    .await?
                    .first()
                    .and_then(|i| ec2.source_created(i))
                    .map(format_rfc3339),
                None => None,
            };
            if !parameters::may_replace(job.source_created.as_deref(), theirs.as_deref()) {
                info!(parameter = %name, current = ?current, "SSM parameter names a copy of a newer source; kept");
                return Ok(false);
            }
            self.outputs.put_image_parameter(&place, &name, copy).await.map(|()| true)
        }
        .await;
        match result {
            Ok(true) => info!(parameter = %name, copy = %copy, "SSM parameter points at the copy"),
            Ok(false) => {}
            Err(e) if e.class == ErrorClass::Permanent => {
                error!(parameter = %name, copy = %copy, error = %e, "SSM parameter refused; the copy is shared anyway")
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Publishes the batch's completions and failures (PUBLISH_EVENTS), best effort: a copy is never affected.
    pub(super) async fn publish_outcomes(&self, report: &BatchReport) {
        if !self.settings.publish_events {
            return;
        }
        let events: Vec<OutgoingEvent> = report
            .facts
            .iter()
            .filter_map(|f| match f {
                Fact::CopyCompleted(c) => Some(completed_event(c)),
                Fact::DeadLettered { failure: Some(f), .. } => Some(failed_event(f)),
                Fact::CopyRetired(r) => Some(retired_event(r)),
                _ => None,
            })
            .collect();
        if events.is_empty() {
            return;
        }
        match self.outputs.publish(&events).await {
            Ok(()) => info!(phase = "publish", events = events.len(), "completion events published"),
            Err(e) => warn!(phase = "publish", events = events.len(), error = %e, "completion events not published"),
        }
    }

    /// The watch message of a source's replication to `places` (PUBLISH_EVENTS), first checked after a poll.
    pub(super) fn watch_effect(&self, source: &ImageId, source_region: &Region, places: Vec<Place>) -> Option<Effect> {
        if !self.settings.publish_events || places.is_empty() {
            return None;
        }
        let watch = Watch {
            source_image: source.clone(),
            source_region: source_region.clone(),
            places,
            since: self.now() as i64,
            checks: 0,
        };
        let delay_seconds = watch::next_delay(&watch, self.settings.step.poll_seconds);
        Some(Effect::Send(OutgoingMessage { body: Continuation::watch_body(&[watch]), delay_seconds }))
    }

    /// Checks watched replications: one provenance lookup per place for all its watched sources. The finished
    /// sources' events are published in one call (a failed publication keeps their watches); the others come
    /// back later.
    pub(super) async fn check_watches(&self, watches: Vec<(usize, Watch)>, home: &AccountId) -> Vec<(usize, Effect)> {
        let now = self.now() as i64;
        let deadline = i64::from(self.settings.sweep_lookback_hours) * 3600;
        let settings = &self.settings;
        let policy = settings.message_bounds();
        // A watch is a message like any other: it may only narrow. Before anything is read, only configured
        // places are kept (the same check as a job's), and a watch long past its deadline is dropped.
        let watches: Vec<(usize, Watch)> = watches
            .into_iter()
            .filter_map(|(i, mut watch)| {
                let source_region = watch.source_region.clone();
                watch.places.retain(|p| policy.check_place(p, &source_region).is_ok());
                if watch.places.is_empty() {
                    warn!(image = %watch.source_image, phase = "watch", "watch of no configured place; dropped");
                    return None;
                }
                // A watch says when its replication started: one that starts in the future would never be due.
                if watch.since > now {
                    warn!(image = %watch.source_image, phase = "watch", "watch whose start lies in the future; dropped");
                    return None;
                }
                if now - watch.since > 2 * deadline {
                    warn!(image = %watch.source_image, phase = "watch", "watch past twice its deadline; dropped");
                    return None;
                }
                Some((i, watch))
            })
            .collect();
        let mut by_place: BTreeMap<Place, BTreeSet<ImageId>> = BTreeMap::new();
        for (_, w) in &watches {
            for place in &w.places {
                by_place.entry(place.clone()).or_default().insert(w.source_image.clone());
            }
        }
        let looked = join_all(by_place.into_iter().map(|(place, sources)| async move {
            let ids: Vec<ImageId> = sources.into_iter().collect();
            let found = match self.at(&place, home) {
                Ok(ec2) => ec2.find_copies(&ids).await,
                Err(e) => Err(e),
            };
            (place, found)
        }))
        .await;
        let mut found = BTreeMap::new();
        let mut unreadable = BTreeSet::new();
        for (place, result) in looked {
            match result {
                Ok(list) => {
                    found.insert(place, list);
                }
                Err(e) => {
                    warn!(region = %place.region, place = %place, phase = "watch", error = %e, "could not look for copies");
                    unreadable.insert(place);
                }
            }
        }
        let (mut finished, mut open) = (Vec::new(), Vec::new());
        for (i, watch) in watches {
            let readable = watch.places.iter().all(|p| !unreadable.contains(p));
            match watch::assess(&watch, &found, home, now, deadline).filter(|_| readable) {
                Some(outcomes) => {
                    let mut event = finished_event(&watch, &outcomes, home);
                    // The rule its copies were made under, as their tags in EC2 say (REPLICATION_RULES).
                    let rule = found
                        .iter()
                        .flat_map(|(place, copies)| copies.iter().map(move |c| (place, c)))
                        .filter(|(place, c)| {
                            verified_source(c, place.owner(home), &place.region)
                                == Some((&watch.source_image, &watch.source_region))
                        })
                        .find_map(|(_, c)| c.tag(RULE_TAG));
                    if let Some(rule) = rule {
                        event.detail["rule"] = json!(rule);
                    }
                    info!(image = %watch.source_image, region = %watch.source_region, phase = "watch",
                        outcomes = ?outcomes.iter().map(|(p, o)| format!("{p}: {}", o.name())).collect::<Vec<_>>(),
                        "replication finished");
                    finished.push((i, watch, event));
                }
                None => open.push((i, watch)),
            }
        }
        if !finished.is_empty() {
            let events: Vec<OutgoingEvent> = finished.iter().map(|(_, _, e)| e.clone()).collect();
            if let Err(e) = self.outputs.publish(&events).await {
                warn!(phase = "watch", events = events.len(), error = %e,
                    "could not publish the finished events; their watches come back");
                open.extend(finished.into_iter().map(|(i, w, _)| (i, w)));
            }
        }
        open.into_iter()
            .map(|(i, mut watch)| {
                let delay_seconds = watch::next_delay(&watch, settings.step.poll_seconds);
                watch.checks += 1;
                let body = Continuation::watch_body(std::slice::from_ref(&watch));
                (i, Effect::Send(OutgoingMessage { body, delay_seconds }))
            })
            .collect()
    }
}

/// What an image says of its source's creation date: our tag, else (an image not ours) its own creation date.
fn image_arn(region: &str, image: &ImageId) -> String {
    format!("arn:aws:ec2:{region}::image/{image}")
}

/// `AMI Replication Completed`: one copy available and shared.
pub fn completed_event(c: &Completion) -> OutgoingEvent {
    let mut event = OutgoingEvent {
        detail_type: COMPLETED.into(),
        detail: json!({
            "source_image_id": c.source_image.as_str(),
            "source_region": c.source_region.as_str(),
            "image_id": c.copy.as_str(),
            "account": c.account.as_str(),
            "region": c.region.as_str(),
            "duration_seconds": c.copy_seconds.map(f64::round),
            "dedup_key": format!("{}/{}/{}/{}", c.source_image, c.account, c.region, c.copy),
        }),
        resources: vec![image_arn(c.region.as_str(), &c.copy)],
    };
    if let Some(rule) = &c.rule {
        event.detail["rule"] = json!(rule);
    }
    event
}

/// `AMI Copy Retired`: an older copy of a family deregistered by retention, its snapshots deleted.
pub fn retired_event(r: &Retired) -> OutgoingEvent {
    OutgoingEvent {
        detail_type: RETIRED.into(),
        detail: json!({
            "image_id": r.copy.as_str(),
            "account": r.account.as_str(),
            "region": r.region.as_str(),
            "family_tag": r.family_tag,
            "family": r.family,
            "reason": r.reason,
            "dedup_key": format!("{}/{}/{}/retired", r.copy, r.account, r.region),
        }),
        resources: vec![image_arn(r.region.as_str(), &r.copy)],
    }
}

/// `AMI Replication Failed`: a place given up on, with the reason.
pub fn failed_event(f: &Failure) -> OutgoingEvent {
    OutgoingEvent {
        detail_type: FAILED.into(),
        detail: json!({
            "source_image_id": f.source_image.as_str(),
            "source_region": f.source_region.as_str(),
            "account": f.account.as_str(),
            "region": f.region.as_str(),
            "reason": f.reason,
            "dedup_key": format!("{}/{}/{}/failed", f.source_image, f.account, f.region),
        }),
        resources: vec![image_arn(f.source_region.as_str(), &f.source_image)],
    }
}

/// `AMI Replication Finished`: every place of a source, with its outcome.
pub fn finished_event(watch: &Watch, outcomes: &[(Place, Outcome)], home: &AccountId) -> OutgoingEvent {
    let places: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|(place, outcome)| {
            let mut v = json!({"account": place.owner(home).as_str(), "region": place.region.as_str(), "outcome": outcome.name()});
            match outcome {
                Outcome::Completed { copy } => v["image_id"] = json!(copy.as_str()),
                Outcome::Failed { reason } => v["reason"] = json!(reason),
                Outcome::Missing => v["reason"] = json!("no finished copy by the deadline (see the dead-letter queue)"),
            }
            v
        })
        .collect();
    let complete = outcomes.iter().all(|(_, o)| matches!(o, Outcome::Completed { .. }));
    OutgoingEvent {
        detail_type: FINISHED.into(),
        detail: json!({
            "source_image_id": watch.source_image.as_str(),
            "source_region": watch.source_region.as_str(),
            "complete": complete,
            "destinations": places,
            "dedup_key": format!("{}/finished", watch.source_image),
        }),
        resources: vec![image_arn(watch.source_region.as_str(), &watch.source_image)],
    }
}
