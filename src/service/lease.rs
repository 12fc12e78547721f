//! A place's admission lease, the shell's part. A step reads the place and decides without it; only when it would
//! start copies does it take the lease, and it starts them under it, then gives it back. When another invocation
//! gave the lease back after the place was read (or its holder's time ran out), the in-flight count is read again
//! under the lease. So two invocations never admit at one place at once, and together never start more copies
//! than the limit has room for, nor more than the request bucket has tokens for. Jobs that find the lease held
//! come back a few seconds later; the holder is then done. A full place costs no lease call.

use super::{push, Invocation, Replicator};
use crate::core::errors::ErrorClass;
use crate::core::facts::Fact;
use crate::core::ids::{AccountId, Place};
use crate::core::place_step::PlacePlan;
use crate::core::step::{self, Decision};
use crate::ports::{Ec2, Ec2Regions, ImageBuilder, Lease, Queue, WaitingList};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use tracing::{error, info, warn};

/// How long a lease lasts when its holder never gives it back (it stopped): far longer than a place's step.
pub const LEASE_SECONDS: f64 = 60.0;

/// No CopyImage is started later than this before the lease ends: a call still running when it ends could race
/// the next holder.
pub const LEASE_MARGIN_SECONDS: f64 = 15.0;

/// How long jobs that found their place's lease held wait before they try again.
pub const LEASE_RETRY_SECONDS: u32 = 5;

/// An id no other invocation has: this process's random key, a counter, and the time.
pub(super) fn holder_id(now: f64) -> String {
    static PROCESS: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let process = *PROCESS.get_or_init(|| std::collections::hash_map::RandomState::new().build_hasher().finish());
    format!("{process:016x}-{}-{}", NEXT.fetch_add(1, Ordering::Relaxed), now as u64)
}

/// The lease's key: the place's account and region (the copy limit and the request buckets are theirs).
pub(super) fn lease_key(place: &Place, home: &AccountId) -> String {
    format!("{}/{}", place.owner(home), place.region)
}

/// Two clocks (two Lambda instances) may differ by this much: a lease given back this close to the place's
/// first read may have admitted copies that read did not see.
pub const CLOCK_SKEW_SECONDS: f64 = 2.0;

/// What the place's step learnt from taking its lease.
#[derive(Debug, Default)]
pub(super) struct LeaseRound {
    /// The lease is held until then (`None`: not taken).
    pub until: Option<f64>,
    /// The place's waiting list, read by the write that took the lease.
    pub waiting: WaitingList,
    /// Another invocation held it.
    pub held: bool,
    /// The table failed: nothing can be parked either.
    pub failed: bool,
}

impl<R: Ec2Regions, Q: Queue, B: ImageBuilder> Replicator<R, Q, B> {
    /// Before the admitted jobs of `plan` start: takes the place's lease, and when another invocation may have
    /// admitted there since the place was read (`observed_at`), reads its pending copies again and admits only
    /// what still fits. Without the lease (held, or the store failed) nothing starts: with a waiting list the jobs
    /// wait there, otherwise they come back on the queue.
    pub(super) async fn admit_under_lease(
        &self,
        ec2: &super::PlaceEc2<R::Ec2>,
        place: &Place,
        home: &AccountId,
        plan: &mut PlacePlan<usize>,
        observed_at: i64,
        invocation: &Invocation,
    ) -> LeaseRound {
        let now = self.now();
        let until = now + LEASE_SECONDS;
        let policy = &self.settings.step;
        let parks = self.leases.keeps_waiting_jobs();
        match self.leases.acquire(&lease_key(place, home), &invocation.holder, now, until).await {
            Ok(Lease::Taken { released_at, waiting }) => {
                // Given back before the place was read: the read is still true. Otherwise read it again.
                if !released_at.is_some_and(|r| r < observed_at as f64 - CLOCK_SKEW_SECONDS) {
                    match ec2.pending_images().await {
                        Ok(pending) => plan.readmit(&pending, self.settings.max_copies_per_region, self.now() as i64),
                        Err(e) => {
                            plan.hold_starts(|job| step::on_error(job, &e, policy));
                            plan.room = 0;
                        }
                    }
                }
                LeaseRound { until: Some(until), waiting, ..LeaseRound::default() }
            }
            Ok(Lease::HeldUntil(t)) => {
                info!(held_until = t, jobs = plan.start.len(), "another invocation admits copies here; jobs wait");
                if parks {
                    plan.refuse_starts();
                } else {
                    plan.hold_starts(|job| Decision::Continue { job: job.clone(), delay_seconds: LEASE_RETRY_SECONDS });
                }
                LeaseRound { held: true, ..LeaseRound::default() }
            }
            Err(e) => {
                // Never a copy failure: the jobs wait. A lasting fault is logged once per invocation, by name.
                let permanent = e.class == ErrorClass::Permanent;
                if permanent && !invocation.admission_table_reported.swap(true, Ordering::Relaxed) {
                    error!(error = %e, "ADMISSION_TABLE cannot be used (missing, or the role may not write it): no \
                        copy starts until it is fixed; jobs wait (JOB_MAX_AGE_HOURS still ends them)");
                } else if !permanent {
                    warn!(error = %e, "the admission lease could not be taken; jobs wait");
                }
                push(&invocation.facts, Fact::AdmissionTableFailed { permanent });
                plan.hold_starts(|job| step::wait_for_admission_table(job, &e, policy));
                let refused = std::mem::take(&mut plan.refused);
                plan.decided.extend(refused.into_iter().map(|(i, job)| {
                    let d = step::wait_for_admission_table(&job, &e, policy);
                    (i, job, d)
                }));
                LeaseRound { failed: true, ..LeaseRound::default() }
            }
        }
    }

    /// Gives the lease of `place` back (best effort: it ends by itself).
    pub(super) async fn release_lease(&self, place: &Place, home: &AccountId, invocation: &Invocation) {
        if let Err(e) = self.leases.release(&lease_key(place, home), &invocation.holder, self.now()).await {
            warn!(error = %e, "the admission lease could not be given back; it ends by itself");
        }
    }

    /// Whether a CopyImage may still start under the lease that ends at `until`.
    pub(super) fn lease_allows_copy(&self, until: Option<f64>) -> bool {
        until.is_none_or(|u| self.now() < u - LEASE_MARGIN_SECONDS)
    }
}
