//! What a job's decision means once its place's step has decided it: sharing an available copy, replacing a failed
//! one, giving up with a tombstone, stopping, or the job's next message. The shell's acting part of the place step
//! (`place` observes and starts copies).

use super::durable::decision_effect;
use super::follow::disable_unless_in_use;
use super::{push, Effect, Invocation, Replicator};
use crate::core::facts::{Completion, Fact};
use crate::core::ids::{AccountId, ImageId};
use crate::core::image::Tag;
use crate::core::job::{Continuation, Job, Phase};
use crate::core::lifecycle;
use crate::core::provenance::SHARE_FAILED_TAG;
use crate::core::step::{self, Decision, ShareFailure};
use crate::ports::{Ec2, Ec2Regions, ImageBuilder, Queue};
use tracing::{error, info, warn};

impl<R: Ec2Regions, Q: Queue, B: ImageBuilder> Replicator<R, Q, B> {
    /// Carries out a decision; `None` when the job is done.
    pub(super) async fn carry_out(
        &self,
        ec2: &super::PlaceEc2<R::Ec2>,
        job: Job,
        decision: Decision,
        home: &AccountId,
        invocation: &Invocation,
    ) -> Option<Effect> {
        let policy = &self.settings.step;
        if let (
            Decision::Share { copy } | Decision::DisableWithSource { copy } | Decision::EnableAndShare { copy },
            true,
        ) = (&decision, self.past_cutoff(invocation))
        {
            info!(copy = %copy, "the invocation's deadline is near; the copy is shared in the next one");
            let mut waiting = job;
            waiting.phase = Phase::Wait { copy_image: copy.clone() };
            return Some(Effect::enqueue(waiting, 0));
        }
        // A copy that follows its source is disabled or enabled first; what that leaves is carried out below.
        let decision = self.carry_out_follow(ec2, &job, decision).await;
        match decision {
            Decision::Share { copy } => match self.share(ec2, &job, &copy, home, invocation).await {
                Ok(()) => {
                    info!(copy = %copy, "replicated");
                    let completion = Completion {
                        copy_seconds: job.copy_started.map(|s| (self.now() - s as f64).max(0.0)),
                        ..self.completion(&job, &copy, home)
                    };
                    push(&invocation.facts, Fact::CopyCompleted(Box::new(completion)));
                    // Best effort: a failed copy left behind is harmless (never resumed, never counted).
                    deregister_failed(ec2, older_failed(&job, &copy)).await;
                    push(&invocation.completed, (job, copy));
                    None
                }
                Err(e) => match step::on_share_error(&job, &copy, &e, policy) {
                    ShareFailure::PutOff { job, delay_seconds } => {
                        // Not a failure: the copy is shared a few seconds later, when the request bucket has refilled.
                        info!(copy = %copy, reason = %e.message, "share put off (request pacing)");
                        Some(Effect::enqueue(job, delay_seconds))
                    }
                    ShareFailure::Failed { decision, mark } => {
                        warn!(copy = %copy, error = %e, "sharing failed");
                        if let Some(reason) = mark {
                            // The copy stays unshared: say so on it (the status command shows it `incomplete`).
                            let tag = [Tag::new(SHARE_FAILED_TAG, reason)];
                            if let Err(e) = ec2.add_tags(std::slice::from_ref(&copy), &tag).await {
                                warn!(copy = %copy, error = %e, "could not mark the copy's failed share");
                            }
                        }
                        let mut waiting = job;
                        waiting.phase = Phase::Wait { copy_image: copy };
                        Some(decision_effect(decision, &waiting))
                    }
                },
            },
            Decision::Done { copy } => {
                info!(copy = %copy, "replicated (already shared)");
                deregister_failed(ec2, older_failed(&job, &copy)).await;
                push(&invocation.completed, (job, copy));
                None
            }
            Decision::Replace { deregister, job: next } => {
                push(&invocation.facts, Fact::CopyFailed { region: job.destination.clone() });
                push(&invocation.facts, Fact::CopyReplaced { region: job.destination.clone() });
                deregister_failed(ec2, deregister.as_ref()).await;
                warn!(copy = ?next.replaces.as_ref().map(ImageId::as_str), failed_copies = next.failed_copies,
                    "copy failed; copying again");
                Some(Effect::enqueue(next, 0))
            }
            Decision::GiveUp { failed_copy: Some(copy), reason } => {
                push(&invocation.facts, Fact::CopyFailed { region: job.destination.clone() });
                // The last failed copy stays as a tombstone (tagged once the dead letter is stored): duplicates of
                // this job and the sweep see that this place was given up on, and stop, instead of trying (and
                // dead-lettering) again.
                deregister_failed(ec2, older_failed(&job, &copy)).await;
                error!(reason = %reason, "replication failed");
                Some(Effect::GiveUp {
                    body: Continuation::body(std::slice::from_ref(&job)),
                    reason: format!("{job}: {reason}"),
                    place: job.place(),
                    tombstone: copy,
                })
            }
            Decision::Stop { reason } => {
                info!(reason = %reason, "replication stopped");
                push(&invocation.stopped, (job, reason));
                None
            }
            other => Some(decision_effect(other, &job)),
        }
    }
}

impl<R: Ec2Regions, Q: Queue, B: ImageBuilder> Replicator<R, Q, B> {
    /// Carries out a copy following its source ([`Decision::DisableWithSource`], [`Decision::EnableAndShare`]): the
    /// decision that then holds (core::lifecycle::after_disable, a share, or the job's answer to the error).
    async fn carry_out_follow(&self, ec2: &super::PlaceEc2<R::Ec2>, job: &Job, decision: Decision) -> Decision {
        let limits = &self.settings.step;
        match decision {
            Decision::DisableWithSource { copy } => {
                // A copy only now being shared has not been launched: DescribeImageReferences alone tells.
                match disable_unless_in_use(ec2, &job.source_image, vec![copy.clone()], vec![]).await {
                    Ok(disabled) => lifecycle::after_disable(job, copy, !disabled.is_empty()),
                    Err(e) => step::on_copy_error(job, &copy, &e, limits),
                }
            }
            Decision::EnableAndShare { copy } => match ec2.enable_image(&copy).await {
                Ok(()) => {
                    info!(copy = %copy, "source enabled again: copy enabled; sharing it again");
                    Decision::Share { copy }
                }
                Err(e) => {
                    warn!(copy = %copy, error = %e, "could not enable the copy");
                    step::on_copy_error(job, &copy, &e, limits)
                }
            },
            other => other,
        }
    }
}

/// The failed copy `job` replaced, unless it is `copy` itself: deregistered once its successor is settled.
fn older_failed<'a>(job: &'a Job, copy: &ImageId) -> Option<&'a ImageId> {
    job.replaces.as_ref().filter(|old| *old != copy)
}

/// Deregisters a failed copy, best effort (a failed copy left behind is harmless).
async fn deregister_failed<E: Ec2>(ec2: &E, copy: Option<&ImageId>) {
    let Some(copy) = copy else { return };
    match ec2.deregister_image(copy).await {
        Ok(()) => info!(copy = %copy, "failed copy deregistered"),
        Err(e) => warn!(copy = %copy, error = %e, "could not deregister the failed copy"),
    }
}
