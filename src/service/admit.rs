//! Admission: before any call at its place, every job of a batch (a continuation's, whatever wrote it) passes the
//! rules of `core::trust` against its source as EC2 shows it now, read once per source and invocation.

use super::durable::{decision_effect, Effect};
use super::{once, push, Invocation, Replicator};
use crate::core::facts::Fact;
use crate::core::ids::{AccountId, ImageId, Region};
use crate::core::job::{Continuation, Job};
use crate::core::step;
use crate::core::trust::JobVerdict;
use crate::ports::{Ec2, Ec2Regions, ImageBuilder, Queue};
use futures::future::join_all;
use std::collections::{BTreeMap, BTreeSet};
use tracing::{info, warn};

impl<R: Ec2Regions, Q: Queue, B: ImageBuilder> Replicator<R, Q, B> {
    /// The jobs that may go on (with the source's facts from EC2), and the effects of those that may not: a
    /// dead letter with the reason for a job the configuration refuses, nothing for a job whose source is gone,
    /// a backoff for a job whose source could not be read now.
    pub(super) async fn admit(
        &self,
        jobs: Vec<(usize, Job)>,
        home: &AccountId,
        invocation: &Invocation,
    ) -> (Vec<(usize, Job)>, Vec<(usize, Effect)>) {
        let policy = self.settings.message_bounds();
        let now = self.now() as i64;
        // Only jobs that name a configured place cost a read: the others are refused from the message alone.
        let sources: BTreeSet<(ImageId, Region)> = jobs
            .iter()
            .filter(|(_, j)| policy.check_job(j).is_ok())
            .map(|(_, j)| (j.source_image.clone(), j.source_region.clone()))
            .collect();
        self.read_sources(sources, invocation).await;
        let mut admitted = Vec::new();
        let mut effects = Vec::new();
        for (i, job) in jobs {
            // Read above (or remembered): no call here.
            let read = if policy.check_job(&job).is_ok() {
                self.source_image(&job.source_image, &job.source_region, invocation).await
            } else {
                Ok(None)
            };
            let span = super::place::job_span(&job);
            let _entered = span.enter();
            let source = match read {
                Ok(source) => source,
                Err(e) => {
                    warn!(error = %e, "could not read the job's source; trying again later");
                    effects.push((i, decision_effect(step::on_error(&job, &e, &self.settings.step), &job)));
                    continue;
                }
            };
            match self.settings.admit_job(&job, source.as_ref(), home, now) {
                JobVerdict::Proceed(job) => admitted.push((i, *job)),
                JobVerdict::Stop(reason) => {
                    info!(reason = %reason, "replication stopped");
                    push(&invocation.stopped, (job, reason));
                }
                JobVerdict::Refuse(reason) => {
                    warn!(reason = %reason, "job refused");
                    let body = Continuation::body(std::slice::from_ref(&job));
                    effects.push((i, Effect::DeadLetter { body, reason: format!("{job}: {reason}") }));
                }
            }
        }
        (admitted, effects)
    }

    /// Reads the sources not read yet in this invocation: one DescribeImages per source region (per 200
    /// sources), its answers (or its error) remembered for each source, as [`Self::source_image`] reads them.
    pub(super) async fn read_sources(&self, sources: BTreeSet<(ImageId, Region)>, invocation: &Invocation) {
        let mut by_region: BTreeMap<Region, Vec<ImageId>> = BTreeMap::new();
        for (image, region) in sources {
            if !once(&invocation.sources, (image.clone(), region.clone())).initialized() {
                by_region.entry(region).or_default().push(image);
            }
        }
        join_all(by_region.into_iter().map(|(region, ids)| async move {
            let read = self.ec2.region(&region).describe_images(&ids).await;
            if read.as_ref().is_err_and(|e| e.class == crate::core::errors::ErrorClass::Throttled) {
                push(&invocation.facts, Fact::Throttled { region: region.clone(), calls: 1 });
            }
            for id in ids {
                let answer =
                    read.as_ref().map(|found| found.iter().find(|i| i.id == id).cloned()).map_err(Clone::clone);
                // A source read meanwhile by another path keeps that answer.
                let _ = once(&invocation.sources, (id, region.clone())).set(answer);
            }
        }))
        .await;
    }
}
