//! A batch sorted by message kind, and what handles each kind: the one place a kind is dispatched. Messages of a
//! kind are handled together, each handler answering effects per item: requests fan out (their sources read in one
//! call per region), jobs pass admission and meet the place's wake-ups in its step, deregistered sources and
//! watches share one lookup per place.

use super::durable::Effect;
use super::waiting::Wake;
use super::{dedup_jobs, push, Invocation, Item, Message, Replicator};
use crate::core::facts::Fact;
use crate::core::ids::{AccountId, ImageId, Place, Region};
use crate::core::job::{Job, ReplicationRequest};
use crate::core::watch::Watch;
use crate::ports::{Ec2Regions, ImageBuilder, Queue};
use futures::future::{join_all, BoxFuture, FutureExt};
use std::collections::BTreeMap;
use tracing::{info, warn};

/// The messages of a batch by kind, each with the index of its item.
#[derive(Default)]
pub(super) struct Batch {
    /// Messages that could not be decoded: dead-lettered with their reason.
    undecodable: Vec<(usize, Effect)>,
    requests: Vec<(usize, ReplicationRequest)>,
    /// Image Builder builds (ARN, body): their AMIs become requests.
    builds: Vec<(usize, String, String)>,
    jobs: Vec<(usize, Job)>,
    wakes: BTreeMap<Place, Wake>,
    gone: Vec<(usize, ImageId, Region)>,
    disabled: Vec<(usize, ImageId, Region)>,
    sweeps: Vec<(usize, String)>,
    /// Copy events of failed copies, at their place (`None`: an account that is not ours).
    failed: Vec<(usize, ImageId, Option<Place>)>,
    watches: Vec<(usize, Watch)>,
}

type Handled<'a> = BoxFuture<'a, Vec<(usize, Effect)>>;

/// Tags each effect with its item.
fn of_item(i: usize, effects: Vec<Effect>) -> Vec<(usize, Effect)> {
    effects.into_iter().map(|e| (i, e)).collect()
}

impl<R: Ec2Regions, Q: Queue, B: ImageBuilder> Replicator<R, Q, B> {
    /// Sorts a batch by kind: what each kind of message becomes.
    pub(super) fn sort(&self, items: &[Item], home: &AccountId) -> Batch {
        let mut batch = Batch::default();
        for (i, item) in items.iter().enumerate() {
            match &item.message {
                Err(reason) => {
                    warn!(message_id = %item.id, phase = "decode", error = %reason, "undecodable message");
                    let reason = format!("undecodable message: {reason}");
                    batch.undecodable.push((i, Effect::DeadLetter { body: item.body.clone(), reason }));
                }
                Ok(Message::Ignore(reason)) => {
                    info!(message_id = %item.id, phase = "decode", reason = %reason, "nothing to do")
                }
                Ok(Message::Request(r)) => batch.requests.push((i, r.clone())),
                Ok(Message::ImageBuilt { arn }) => batch.builds.push((i, arn.clone(), item.body.clone())),
                Ok(Message::Jobs(list)) => batch.jobs.extend(list.iter().map(|job| (i, job.clone()))),
                Ok(Message::Wake { places, check }) => {
                    for place in places {
                        let wake = batch.wakes.entry(place.clone()).or_insert(Wake { items: vec![], check: true });
                        wake.items.push(i);
                        // A wake-up of the chain looks whatever a copy event's would.
                        wake.check &= *check;
                    }
                }
                Ok(Message::SourceGone { image, region }) => batch.gone.push((i, image.clone(), region.clone())),
                Ok(Message::SourceDisabled { image, region }) => {
                    batch.disabled.push((i, image.clone(), region.clone()))
                }
                Ok(Message::Sweep { time }) => batch.sweeps.push((i, time.clone())),
                Ok(Message::CopyFailed { image, region, account }) => {
                    batch.failed.push((i, image.clone(), self.event_place(account.as_ref(), region, home)))
                }
                Ok(Message::Watch(list)) => batch.watches.extend(list.iter().map(|w| (i, w.clone()))),
            }
        }
        batch
    }

    /// Handles every kind of a batch, concurrently: each item's effects.
    pub(super) async fn handle(&self, batch: Batch, home: &AccountId, invocation: &Invocation) -> Vec<(usize, Effect)> {
        let Batch { undecodable, requests, builds, jobs, wakes, gone, disabled, sweeps, failed, watches } = batch;
        let mut effects = undecodable;
        let (requests, unbuilt) = self.expand_builds(requests, builds, home).await;
        effects.extend(unbuilt);
        // Every job passes the rules against its source as EC2 shows it, before duplicates are dropped: an edited
        // copy of a job never takes the genuine one's place. Then the requests' own sources are read (one call
        // per region; admission read the jobs' already).
        let (jobs, refused) = self.admit(jobs, home, invocation).await;
        effects.extend(refused);
        self.read_sources(self.own_sources(&requests, home), invocation).await;
        let handlers: Vec<Handled<'_>> = vec![
            async move {
                let fanned = join_all(
                    requests.iter().map(|(i, r)| async move { of_item(*i, self.fan_out(r, home, invocation).await) }),
                );
                fanned.await.into_iter().flatten().collect()
            }
            .boxed(),
            self.place_steps(jobs, wakes, home, invocation).boxed(),
            self.sources_gone(gone, home).boxed(),
            self.sources_disabled(disabled, home, invocation).boxed(),
            async move {
                let swept = join_all(
                    sweeps.iter().map(|(i, time)| async move { of_item(*i, self.sweep(time, home, invocation).await) }),
                );
                swept.await.into_iter().flatten().collect()
            }
            .boxed(),
            async move {
                let replaced = join_all(failed.iter().map(|(i, image, place)| async move {
                    of_item(*i, self.copy_failed(image, place.as_ref(), home, invocation).await)
                }));
                replaced.await.into_iter().flatten().collect()
            }
            .boxed(),
            self.check_watches(watches, home).boxed(),
        ];
        effects.extend(join_all(handlers).await.into_iter().flatten());
        effects
    }

    /// The requests of a batch, those of its Image Builder builds included (their AMIs, one GetImage each).
    async fn expand_builds(
        &self,
        mut requests: Vec<(usize, ReplicationRequest)>,
        builds: Vec<(usize, String, String)>,
        home: &AccountId,
    ) -> (Vec<(usize, ReplicationRequest)>, Vec<(usize, Effect)>) {
        let mut effects = Vec::new();
        let built =
            join_all(builds.iter().map(|(i, arn, body)| async move { (*i, self.expand_build(arn, body, home).await) }));
        for (i, built) in built.await {
            match built {
                Ok(list) => requests.extend(list.into_iter().map(|r| (i, r))),
                Err(effect) => effects.push((i, effect)),
            }
        }
        (requests, effects)
    }

    /// The sources of this account's requests (an event of a target account is read with its role).
    fn own_sources(
        &self,
        requests: &[(usize, ReplicationRequest)],
        home: &AccountId,
    ) -> std::collections::BTreeSet<(ImageId, Region)> {
        requests
            .iter()
            .filter(|(_, r)| {
                self.event_place(r.event_account.as_ref(), &r.source_region, home).is_some_and(|p| p.account.is_none())
            })
            .map(|(_, r)| (r.image.clone(), r.source_region.clone()))
            .collect()
    }

    /// Each place takes one step for its admitted jobs (duplicates dropped) and its wake-ups.
    async fn place_steps(
        &self,
        jobs: Vec<(usize, Job)>,
        mut wakes: BTreeMap<Place, Wake>,
        home: &AccountId,
        invocation: &Invocation,
    ) -> Vec<(usize, Effect)> {
        let mut by_place: BTreeMap<Place, Vec<(usize, Job)>> = BTreeMap::new();
        for (i, job) in dedup_jobs(jobs) {
            by_place.entry(job.place()).or_default().push((i, job));
        }
        for place in wakes.keys() {
            by_place.entry(place.clone()).or_default();
        }
        let now = self.now();
        if let Some(since) = by_place.values().flatten().filter_map(|(_, j)| j.since).min() {
            push(&invocation.facts, Fact::OldestJobAge { seconds: (now - since as f64).max(0.0) });
        }
        let steps = join_all(by_place.into_iter().map(|(place, jobs)| {
            let wake = wakes.remove(&place);
            self.advance_place(place, jobs, wake, home, invocation)
        }));
        steps.await.into_iter().flatten().collect()
    }
}
