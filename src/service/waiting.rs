//! A place's waiting list, the shell's part (`core::waiting` decides). Jobs that find their place full wait in the
//! place's item of the admission table instead of coming back on the queue every minute: one write parks all of a
//! step's. The holder of the place's lease reads them with the same write that takes it, and admits the longest of
//! them and of its own batch; an entry it takes is checked like any job (its source read from EC2, the rules, the
//! lookup of an existing copy) before its copy starts, and leaves the list when the lease is given back. A place is
//! looked at again when something can change there: a poll that finds one of its copies settled (the jobs started
//! while others waited carry `behind`), a copy event (a wake-up with `check`), a new job, and the place's wake-up
//! message, one per place, the safety net.

use super::durable::Effect;
use super::lease::{lease_key, LeaseRound};
use super::{Invocation, Replicator};
use crate::core::ids::{AccountId, ImageId, Place};
use crate::core::job::{Continuation, Job};
use crate::core::place_step::{self, PlacePlan};
use crate::core::waiting::{self, Waiting};
use crate::ports::{Ec2, Ec2Regions, ImageBuilder, OutgoingMessage, Queue, WaitingChanges};
use std::collections::BTreeSet;
use tracing::{info, warn};

/// The tag of a job that came from the waiting list, not from a message of the batch: its effects belong to no
/// item (nothing to acknowledge or deliver again; what fails is left in the list).
pub(super) const FROM_LIST: usize = usize::MAX;

/// A wake-up of a place: the items that carried it, and whether it looks only when jobs wait (a copy event's).
#[derive(Debug, Clone, Default)]
pub(super) struct Wake {
    pub items: Vec<usize>,
    pub check: bool,
}

/// What a place's step leaves for the end of the invocation: its lease to give back with its waiting list's
/// changes, and the place's wake-up to send.
#[derive(Debug)]
pub(super) struct Release {
    key: String,
    /// The lease is this invocation's: given back with `changes` (otherwise only the wake-up's time is recorded).
    holds: bool,
    changes: WaitingChanges,
    /// The items whose jobs the changes park.
    parked: BTreeSet<usize>,
    /// The entries among `changes.unpark` whose jobs were taken (the rest could not be read).
    taken: Vec<String>,
    /// The wake-up to send first (in this many seconds), and the items delivered again if it cannot be.
    wake: Option<(Place, u32, BTreeSet<usize>)>,
}

/// The list's side of an admission round.
#[derive(Debug, Default)]
pub(super) struct Taken {
    /// Entries to remove when the lease is given back: taken, or unreadable.
    pub unpark: Vec<String>,
    /// The taken ones.
    pub taken: Vec<String>,
    /// Entries left in the list after this round (before the step's own are parked).
    pub left: BTreeSet<String>,
    /// Seconds until the first job left waiting that is still gathering may start.
    pub gathered_in: Option<i64>,
}

impl<R: Ec2Regions, Q: Queue, B: ImageBuilder> Replicator<R, Q, B> {
    /// Under the lease: the longest of the batch's candidates and the stored entries start (as many as the place
    /// has room for); the batch's others are to be parked. Taken entries become jobs, admitted against their
    /// sources and looked up at the place (one DescribeImages for all) before they may start. Effects of entries
    /// refused outright are returned.
    pub(super) async fn take_waiting(
        &self,
        ec2: &super::PlaceEc2<R::Ec2>,
        place: &Place,
        home: &AccountId,
        plan: &mut PlacePlan<usize>,
        round: &LeaseRound,
        invocation: &Invocation,
    ) -> (Taken, Vec<(usize, Effect)>) {
        let (stored, bad) = waiting::in_priority_order(&round.waiting.entries);
        for (key, why) in &bad {
            warn!(entry = %key, reason = %why, "an entry of the waiting list cannot be read; removed");
        }
        let mut taken = Taken { unpark: bad.into_iter().map(|(k, _)| k).collect(), ..Taken::default() };
        let stored_keys: BTreeSet<String> = stored.iter().map(Waiting::key).collect();
        let mut batch = std::mem::take(&mut plan.start);
        batch.append(&mut plan.refused);
        let now = self.now() as i64;
        let choice = waiting::choose(batch, stored.clone(), plan.room, now);
        plan.start = choice.start;
        plan.refused = choice.park;
        plan.waiting_for_capacity = plan.refused.len();
        let starting: BTreeSet<String> =
            plan.start.iter().map(|(_, j)| Waiting::of(j).key()).chain(choice.take.iter().map(Waiting::key)).collect();
        // A batch job that starts stands for its stored entry too.
        taken.taken = stored_keys.iter().filter(|k| starting.contains(*k)).cloned().collect();
        taken.unpark.extend(taken.taken.iter().cloned());
        taken.left = stored_keys.into_iter().filter(|k| !starting.contains(k)).collect();
        let left_since = stored.iter().filter(|w| taken.left.contains(&w.key())).map(|w| w.since);
        let parked_since = plan.refused.iter().filter(|(_, j)| j.failed_copies == 0).map(|(_, j)| j.since);
        taken.gathered_in = waiting::gathered_in(left_since.chain(parked_since), now);
        if choice.take.is_empty() {
            return (taken, vec![]);
        }
        info!(taken = choice.take.len(), left = taken.left.len(), "jobs taken from the place's waiting list");
        let jobs: Vec<(usize, Job)> = choice.take.iter().map(|w| (FROM_LIST, w.to_job(place))).collect();
        let (admitted, effects) = self.admit(jobs, home, invocation).await;
        if admitted.is_empty() {
            return (taken, effects);
        }
        let sources: Vec<ImageId> =
            admitted.iter().map(|(_, j)| j.source_image.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let existing = ec2.find_copies(&sources).await;
        let owner = place.owner(home).clone();
        let policy = plan.policy.clone();
        let candidates = place_step::decide_copies(admitted, &existing, &owner, &policy, &mut plan.decided);
        plan.start.extend(candidates);
        (taken, effects)
    }

    /// After the step's copies started: gives the lease back (when taken) with the waiting list's changes (the
    /// taken entries out, the batch's refused jobs in), or parks those alone; sends the place's wake-up when jobs
    /// wait and none is on its way. What cannot be parked goes back on the queue. Answers the effects of items
    /// that must come back (a wake-up that could not be sent).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn settle_waiting(
        &self,
        place: &Place,
        home: &AccountId,
        plan: &mut PlacePlan<usize>,
        round: &LeaseRound,
        taken: Taken,
        own_in_flight: usize,
        wake: Option<&Wake>,
        invocation: &Invocation,
    ) -> Vec<(usize, Effect)> {
        let key = lease_key(place, home);
        let now = self.now();
        let parked_items: BTreeSet<usize> = plan.refused.iter().map(|(i, _)| *i).filter(|i| *i != FROM_LIST).collect();
        let park: Vec<(String, String)> = if round.failed || !self.leases.keeps_waiting_jobs() {
            vec![]
        } else {
            plan.refused.iter().map(|(_, j)| (Waiting::of(j).key(), Waiting::of(j).value())).collect()
        };
        let mut left: BTreeSet<String> = taken.left;
        left.extend(park.iter().map(|(k, _)| k.clone()));
        let gathered_in =
            taken.gathered_in.or_else(|| waiting::gathered_in(plan.refused.iter().map(|(_, j)| j.since), now as i64));
        let delay = waiting::wake_delay(own_in_flight, self.settings.step.capacity_max_seconds, gathered_in);
        let mut effects = Vec::new();
        let mut wake_items = parked_items.clone();
        wake_items.extend(wake.map(|w| w.items.clone()).unwrap_or_default());
        if round.until.is_some() {
            let changes = WaitingChanges { park: park.clone(), unpark: taken.unpark, wake_at: None };
            let wake_up = waiting::wake_needed(left.len(), round.waiting.wake_at, now, delay)
                .then(|| (place.clone(), delay, wake_items));
            // Given back once the batch is durable ([`Self::release_places`]): a taken job's entry leaves the list
            // only when the message that follows its copy is stored, and a parked job's message is acknowledged
            // only when its entry is.
            plan.refused.clear();
            let release =
                Release { key, holds: true, changes, parked: parked_items, taken: taken.taken, wake: wake_up };
            invocation.releases.lock().unwrap_or_else(|e| e.into_inner()).push(release);
            return effects;
        }
        if park.is_empty() {
            plan.wait_on_queue();
            if wake.is_some() && round.held {
                // The holder looks at the list now; this wake-up comes back in case it stops.
                return wake_again(place, wake, super::lease::LEASE_RETRY_SECONDS);
            }
            if let Some(w) = wake.filter(|w| !w.check && round.failed) {
                // The table failed: the wake-up comes back after the capacity delay, like the jobs.
                return wake_again(place, Some(w), delay);
            }
            if let Some(w) = wake.filter(|w| !w.check) {
                // The place is still full: the chain goes on, as the next wake-up.
                if let Err(e) = self.leases.set_wake(&key, now + f64::from(delay)).await {
                    warn!(error = %e, "the wake-up's time could not be recorded; another may be sent");
                }
                return wake_again(place, Some(w), delay);
            }
            return effects;
        }
        match self.leases.park(&key, &park, now).await {
            Ok(wake_at) => {
                info!(parked = park.len(), "jobs wait in the place's waiting list");
                plan.refused.clear();
                if waiting::wake_needed(left.len(), wake_at, now, delay) {
                    let release = Release {
                        key,
                        holds: false,
                        changes: WaitingChanges::default(),
                        parked: BTreeSet::new(),
                        taken: vec![],
                        wake: Some((place.clone(), delay, wake_items)),
                    };
                    invocation.releases.lock().unwrap_or_else(|e| e.into_inner()).push(release);
                }
                if round.held {
                    effects.extend(wake_again(place, wake, super::lease::LEASE_RETRY_SECONDS));
                }
            }
            Err(e) => {
                warn!(error = %e, jobs = park.len(), "the waiting list could not take the jobs; they come back on the queue");
                plan.wait_on_queue();
            }
        }
        effects
    }

    /// Gives back the leases this invocation holds, with their waiting lists' changes, once the batch's effects
    /// are durable. When a taken job's next message could not be stored (`list_failed`), taken entries stay in
    /// their lists (the next holder finds their copies by provenance). When a list cannot be written, the items
    /// whose jobs it would have parked are delivered again.
    pub(super) async fn release_places(
        &self,
        items: &[super::Item],
        invocation: &Invocation,
        list_failed: bool,
        report: &mut super::BatchReport,
    ) {
        let mut releases = std::mem::take(&mut *invocation.releases.lock().unwrap_or_else(|e| e.into_inner()));
        let now = self.now();
        // The places' wake-ups first, in as few calls as SendMessageBatch allows; a place whose wake-up is not
        // stored records none, and the items that needed it come back.
        let wakes: Vec<(usize, OutgoingMessage)> = releases
            .iter()
            .enumerate()
            .filter_map(|(n, r)| r.wake.as_ref().map(|(place, delay, _)| (n, place, *delay)))
            .map(|(n, place, delay)| {
                (n, OutgoingMessage { body: Continuation::wake_body(place, false), delay_seconds: delay })
            })
            .collect();
        let messages: Vec<OutgoingMessage> = wakes.iter().map(|(_, m)| m.clone()).collect();
        let sent = if messages.is_empty() { vec![] } else { self.queue.send(&messages).await };
        let mut retry: BTreeSet<usize> = BTreeSet::new();
        for ((n, message), result) in wakes.iter().zip(sent) {
            let release = &mut releases[*n];
            match result {
                Ok(()) => {
                    info!(place = %release.key, delay_seconds = message.delay_seconds, "the place's wake-up is on its way");
                    release.changes.wake_at = Some(now + f64::from(message.delay_seconds));
                }
                Err(e) => {
                    warn!(place = %release.key, error = %e, "the place's wake-up could not be sent; the messages that \
                        brought its waiting jobs come back");
                    retry.extend(release.wake.as_ref().map(|(_, _, items)| items.clone()).unwrap_or_default());
                }
            }
        }
        let written = futures::future::join_all(releases.into_iter().map(|mut release| async move {
            if list_failed {
                release.changes.unpark.retain(|k| !release.taken.contains(k));
            }
            let result = if release.holds {
                self.leases.release_with(&release.key, &invocation.holder, now, release.changes).await
            } else if let Some(at) = release.changes.wake_at {
                self.leases.set_wake(&release.key, at).await.or_else(|e| {
                    warn!(place = %release.key, error = %e, "the wake-up's time could not be recorded; another may be sent");
                    Ok(())
                })
            } else {
                Ok(())
            };
            (release.key, release.parked, result)
        }))
        .await;
        for (key, parked, result) in written {
            if let Err(e) = result {
                warn!(place = %key, error = %e, parked = parked.len(), "the place's lease and waiting list could not \
                    be written: the lease ends by itself, the messages of the jobs it would have parked come back");
                retry.extend(parked);
            }
        }
        for item in retry.iter().filter_map(|i| items.get(*i)) {
            if !report.retry.contains(&item.id) {
                report.retry.push(item.id.clone());
            }
        }
    }
}

/// The wake-up's items send it again after `delay` seconds.
pub(super) fn wake_again(place: &Place, wake: Option<&Wake>, delay: u32) -> Vec<(usize, Effect)> {
    let Some(wake) = wake else { return vec![] };
    let body = Continuation::wake_body(place, wake.check);
    wake.items
        .iter()
        .map(|i| (*i, Effect::Send(OutgoingMessage { body: body.clone(), delay_seconds: delay })))
        .collect()
}
