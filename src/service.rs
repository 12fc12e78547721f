//! The replicator: runs a batch of decoded messages through the core, using the ports. The same code runs in
//! Lambda, in the tests and in the simulator.

use crate::core::errors::{ErrorClass, PortError};
use crate::core::ids::{AccountId, ImageId, Region};
use crate::core::image::{ImageInfo, ImageState, LaunchPermission, Tag};
use crate::core::job::{Continuation, Job, Phase, ReplicationRequest};
use crate::core::plan::{self, Readiness};
use crate::core::provenance::{client_token, is_copy_of, provenance_tags};
use crate::core::share::{self, SharePolicy};
use crate::core::step::{self, Decision, StepPolicy};
use crate::ports::{CopyRequest, Ec2, Ec2Regions, OutgoingMessage, Queue};
use futures::future::join_all;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;
use tracing::{info, warn, Instrument};

/// What the replicator needs to know from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub target_regions: Vec<Region>,
    pub tag_filter: Option<Tag>,
    pub step: StepPolicy,
    pub share: SharePolicy,
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Replicate an image (an EventBridge event or a work item).
    Request(ReplicationRequest),
    /// Resume a job (a continuation).
    Job(Job),
    /// Nothing to do, with the reason (e.g. an AMI state other than `available`).
    Ignore(String),
}

/// One message of a batch. `message` is `Err` with a reason when it could not be decoded.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    pub body: String,
    pub message: Result<Message, String>,
}

/// What became of a batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchReport {
    /// Ids of the items that must be delivered again (nothing durable was made of them).
    pub retry: Vec<String>,
    /// Ids of the items stored in the dead-letter queue, with the reason.
    pub dead_lettered: Vec<(String, String)>,
    /// Jobs whose copy is available and shared.
    pub completed: Vec<(Job, ImageId)>,
}

/// What to do with one item once its work is done.
enum Outcome {
    Done,
    Send(Vec<OutgoingMessage>),
    DeadLetter(String),
    Retry(String),
}

type SourcePermissions = Arc<OnceCell<Result<Vec<LaunchPermission>, PortError>>>;

pub struct Replicator<R, Q> {
    settings: Arc<Settings>,
    ec2: R,
    queue: Q,
}

impl<R: Ec2Regions, Q: Queue> Replicator<R, Q> {
    pub fn new(settings: Arc<Settings>, ec2: R, queue: Q) -> Self {
        Self { settings, ec2, queue }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Processes a batch. Work of independent items runs concurrently; each item ends acknowledged (its
    /// effects are durable: sent, dead-lettered, done) or in `retry`.
    pub async fn process(&self, items: Vec<Item>, account: &AccountId) -> BatchReport {
        let mut outcomes: Vec<Option<Outcome>> = items.iter().map(|_| None).collect();
        let mut requests = Vec::new();
        let mut jobs_by_region: BTreeMap<Region, Vec<(usize, Job)>> = BTreeMap::new();
        for (i, item) in items.iter().enumerate() {
            match &item.message {
                Err(reason) => {
                    warn!(message_id = %item.id, phase = "decode", error = %reason, "undecodable message");
                    outcomes[i] = Some(Outcome::DeadLetter(format!("undecodable message: {reason}")));
                }
                Ok(Message::Ignore(reason)) => {
                    info!(message_id = %item.id, phase = "decode", reason = %reason, "nothing to do");
                    outcomes[i] = Some(Outcome::Done);
                }
                Ok(Message::Request(r)) => requests.push((i, r)),
                Ok(Message::Job(job)) => jobs_by_region
                    .entry(job.destination.clone())
                    .or_default()
                    .push((i, job.clone())),
            }
        }

        let permissions: Mutex<HashMap<(ImageId, Region), SourcePermissions>> = Mutex::new(HashMap::new());
        let completed = Mutex::new(Vec::new());
        let fan_outs = join_all(
            requests
                .into_iter()
                .map(|(i, r)| async move { (i, self.fan_out(r, account).await) }),
        );
        let regions = join_all(
            jobs_by_region
                .into_iter()
                .map(|(region, jobs)| self.advance_region(region, jobs, account, &permissions, &completed)),
        );
        let (fanned, advanced) = tokio::join!(fan_outs, regions);
        for (i, outcome) in fanned.into_iter().chain(advanced.into_iter().flatten()) {
            outcomes[i] = Some(outcome);
        }

        let mut report = self.make_durable(&items, outcomes).await;
        report.completed = completed.into_inner().unwrap_or_else(|e| e.into_inner());
        report
    }

    /// Sends what the outcomes ask for; an item is acknowledged only when all of its messages are stored.
    async fn make_durable(&self, items: &[Item], outcomes: Vec<Option<Outcome>>) -> BatchReport {
        let mut report = BatchReport::default();
        let mut outbox = Vec::new();
        let mut owners = Vec::new();
        for (i, outcome) in outcomes.into_iter().enumerate() {
            match outcome.unwrap_or(Outcome::Retry("no outcome".into())) {
                Outcome::Done => {}
                Outcome::Retry(reason) => {
                    warn!(message_id = %items[i].id, reason = %reason, "message will be delivered again");
                    report.retry.push(items[i].id.clone());
                }
                Outcome::Send(messages) => {
                    owners.extend(std::iter::repeat_n(i, messages.len()));
                    outbox.extend(messages);
                }
                Outcome::DeadLetter(reason) => match self.queue.dead_letter(&items[i].body, &reason).await {
                    Ok(true) => {
                        warn!(message_id = %items[i].id, reason = %reason, "sent to the dead-letter queue");
                        report.dead_lettered.push((items[i].id.clone(), reason));
                    }
                    Ok(false) => {
                        warn!(message_id = %items[i].id, reason = %reason,
                            "can never succeed; no DEAD_LETTER_QUEUE_URL, left to the queue's redrive policy");
                        report.retry.push(items[i].id.clone());
                    }
                    Err(e) => {
                        warn!(message_id = %items[i].id, reason = %reason, error = %e, "dead-lettering failed");
                        report.retry.push(items[i].id.clone());
                    }
                },
            }
        }
        if !outbox.is_empty() {
            let results = self.queue.send(&outbox).await;
            for (owner, result) in owners.into_iter().zip(results) {
                if let Err(e) = result {
                    warn!(message_id = %items[owner].id, error = %e, "could not enqueue a continuation");
                    if !report.retry.contains(&items[owner].id) {
                        report.retry.push(items[owner].id.clone());
                    }
                }
            }
        }
        report
    }

    /// Reads the source image and makes one copy job per destination region.
    async fn fan_out(&self, request: &ReplicationRequest, account: &AccountId) -> Outcome {
        let span =
            tracing::info_span!("fan_out", image = %request.image, region = %request.source_region, phase = "fan_out");
        async {
            let ec2 = self.ec2.region(&request.source_region);
            let image = match ec2.describe_image(&request.image).await {
                Ok(Some(image)) => image,
                Ok(None) => {
                    return Outcome::DeadLetter(format!(
                        "source image {} not found in {}",
                        request.image, request.source_region
                    ))
                }
                Err(e) if e.class == ErrorClass::Permanent => {
                    return Outcome::DeadLetter(format!("reading source image {}: {e}", request.image))
                }
                Err(e) => return Outcome::Retry(format!("reading source image {}: {e}", request.image)),
            };
            if let Some(skip) = plan::skip_reason(&image, account, self.settings.tag_filter.as_ref()) {
                info!(reason = %skip, "skipped");
                return Outcome::Done;
            }
            match plan::source_readiness(&image) {
                Readiness::Ready => {}
                Readiness::NotYet => return Outcome::Retry(format!("source image {} is still pending", image.id)),
                Readiness::Never(reason) => return Outcome::DeadLetter(reason),
            }
            let destinations = plan::destinations(
                &request.source_region,
                request.targets.as_deref(),
                &self.settings.target_regions,
            );
            let jobs = plan::fan_out(&image, &request.source_region, &destinations);
            info!(destinations = ?destinations.iter().map(Region::as_str).collect::<Vec<_>>(), "fanned out");
            Outcome::Send(
                jobs.iter()
                    .map(|job| OutgoingMessage {
                        body: Continuation::body(job),
                        delay_seconds: 0,
                    })
                    .collect(),
            )
        }
        .instrument(span)
        .await
    }

    /// Advances every job of one destination region: one DescribeImages for all waiting copies, one for all
    /// existing copies of the sources to copy, then CopyImage for the rest.
    async fn advance_region(
        &self,
        region: Region,
        jobs: Vec<(usize, Job)>,
        account: &AccountId,
        permissions: &Mutex<HashMap<(ImageId, Region), SourcePermissions>>,
        completed: &Mutex<Vec<(Job, ImageId)>>,
    ) -> Vec<(usize, Outcome)> {
        let ec2 = self.ec2.region(&region);
        let mut waiting = Vec::new();
        let mut to_copy = Vec::new();
        for (i, job) in jobs {
            match &job.phase {
                Phase::Wait { copy_image } => waiting.push((i, copy_image.clone(), job)),
                Phase::Copy => to_copy.push((i, job)),
            }
        }

        let waiting_ids: Vec<ImageId> = waiting.iter().map(|(_, copy, _)| copy.clone()).collect();
        let sources: Vec<ImageId> = dedup(to_copy.iter().map(|(_, j)| j.source_image.clone()));
        let (observed, existing) = tokio::join!(
            async {
                if waiting_ids.is_empty() {
                    Ok(vec![])
                } else {
                    ec2.describe_own_images(&waiting_ids).await
                }
            },
            async {
                if sources.is_empty() {
                    Ok(vec![])
                } else {
                    ec2.find_copies(&sources).await
                }
            },
        );

        let mut decided: Vec<(usize, Job, Decision)> = Vec::new();
        for (i, copy, job) in waiting {
            let decision = match &observed {
                Ok(images) => {
                    let state = images.iter().find(|img| img.id == copy).map(|img| &img.state);
                    step::on_copy_observed(&job, &copy, state, &self.settings.step)
                }
                Err(e) => step::on_error(&job, e, &self.settings.step),
            };
            decided.push((i, job, decision));
        }

        let mut starts = Vec::new();
        for (i, job) in to_copy {
            match &existing {
                Err(e) => {
                    let decision = step::on_error(&job, e, &self.settings.step);
                    decided.push((i, job, decision));
                }
                Ok(images) => match best_existing_copy(images, &job) {
                    Some(copy) => {
                        info!(image = %job.source_image, region = %region, phase = "copy", copy = %copy.id,
                            state = %copy.state, "copy already exists");
                        let decision = step::on_copy_observed(&job, &copy.id, Some(&copy.state), &self.settings.step);
                        decided.push((i, job, decision));
                    }
                    None => starts.push((i, job)),
                },
            }
        }
        let started = join_all(starts.into_iter().map(|(i, job)| {
            let ec2 = &ec2;
            let span = job_span(&job);
            async move {
                let request = self.copy_request(&job, account);
                let decision = match ec2.copy_image(&request).await {
                    Ok(copy) => {
                        info!(copy = %copy, attempt = job.failed_copies, "copy started");
                        step::on_copy_observed(&job, &copy, Some(&ImageState::Pending), &self.settings.step)
                    }
                    Err(e) => {
                        warn!(error = %e, "CopyImage failed");
                        step::on_error(&job, &e, &self.settings.step)
                    }
                };
                (i, job, decision)
            }
            .instrument(span)
        }))
        .await;
        decided.extend(started);

        join_all(decided.into_iter().map(|(i, job, decision)| {
            let span = job_span(&job);
            let ec2 = &ec2;
            async move {
                (
                    i,
                    self.carry_out(ec2, job, decision, account, permissions, completed)
                        .await,
                )
            }
            .instrument(span)
        }))
        .await
    }

    fn copy_request(&self, job: &Job, account: &AccountId) -> CopyRequest {
        CopyRequest {
            source_image: job.source_image.clone(),
            source_region: job.source_region.clone(),
            name: job.name.clone().unwrap_or_else(|| job.source_image.to_string()),
            description: job.description.clone(),
            client_token: client_token(
                &job.source_image,
                &job.source_region,
                &job.destination,
                account,
                job.failed_copies,
            ),
            tags: provenance_tags(&job.source_image, &job.source_region),
            copy_image_tags: true,
        }
    }

    async fn carry_out(
        &self,
        ec2: &R::Ec2,
        job: Job,
        decision: Decision,
        account: &AccountId,
        permissions: &Mutex<HashMap<(ImageId, Region), SourcePermissions>>,
        completed: &Mutex<Vec<(Job, ImageId)>>,
    ) -> Outcome {
        match decision {
            Decision::Continue { job, delay_seconds } => Outcome::Send(vec![OutgoingMessage {
                body: Continuation::body(&job),
                delay_seconds,
            }]),
            Decision::Share { copy } => match self.share(ec2, &job, &copy, account, permissions).await {
                Ok(()) => {
                    info!(copy = %copy, "replicated");
                    completed.lock().unwrap_or_else(|e| e.into_inner()).push((job, copy));
                    Outcome::Done
                }
                Err(e) => {
                    warn!(copy = %copy, error = %e, "sharing failed");
                    let mut waiting = job;
                    waiting.phase = Phase::Wait { copy_image: copy };
                    match step::on_error(&waiting, &e, &self.settings.step) {
                        Decision::Continue { job, delay_seconds } => Outcome::Send(vec![OutgoingMessage {
                            body: Continuation::body(&job),
                            delay_seconds,
                        }]),
                        Decision::GiveUp { reason, .. } => Outcome::DeadLetter(format!("sharing the copy: {reason}")),
                        _ => Outcome::Retry(e.to_string()),
                    }
                }
            },
            Decision::Replace { failed_copy, job: next } => match ec2.deregister_image(&failed_copy).await {
                Ok(()) => {
                    warn!(copy = %failed_copy, failed_copies = next.failed_copies, "failed copy deregistered; copying again");
                    Outcome::Send(vec![OutgoingMessage {
                        body: Continuation::body(&next),
                        delay_seconds: 0,
                    }])
                }
                Err(e) => Outcome::Retry(format!("deregistering failed copy {failed_copy}: {e}")),
            },
            Decision::GiveUp { reason, failed_copy } => {
                if let Some(copy) = failed_copy {
                    if let Err(e) = ec2.deregister_image(&copy).await {
                        warn!(copy = %copy, error = %e, "could not deregister the failed copy");
                    }
                }
                tracing::error!(reason = %reason, "replication failed");
                Outcome::DeadLetter(format!("{job}: {reason}"))
            }
        }
    }

    /// Applies launch permissions to an available copy. The source's permissions are read once per source
    /// per invocation.
    async fn share(
        &self,
        ec2: &R::Ec2,
        job: &Job,
        copy: &ImageId,
        account: &AccountId,
        permissions: &Mutex<HashMap<(ImageId, Region), SourcePermissions>>,
    ) -> Result<(), PortError> {
        let policy = &self.settings.share;
        let source_permissions = if policy.copy_source_permissions {
            let cell = permissions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry((job.source_image.clone(), job.source_region.clone()))
                .or_default()
                .clone();
            cell.get_or_init(|| async {
                self.ec2
                    .region(&job.source_region)
                    .launch_permissions(&job.source_image)
                    .await
            })
            .await
            .clone()?
        } else {
            Vec::new()
        };
        let decision = share::decide(&source_permissions, policy, account);
        if decision.public_withheld {
            warn!(copy = %copy, "source is public, but ALLOW_PUBLIC is not true: the copy is not made public");
        }
        if decision.grants.is_empty() {
            return Ok(());
        }
        ec2.add_launch_permissions(copy, &decision.grants).await?;
        info!(copy = %copy, grants = ?decision.grants.iter().map(ToString::to_string).collect::<Vec<_>>(), "launch permissions applied");
        Ok(())
    }
}

fn job_span(job: &Job) -> tracing::Span {
    tracing::info_span!("job", image = %job.source_image, region = %job.destination, phase = job.phase_name())
}

fn dedup(ids: impl Iterator<Item = ImageId>) -> Vec<ImageId> {
    let mut out: Vec<ImageId> = Vec::new();
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// The copy to resume, if one exists: an available one first, else a pending one. Failed or deregistered
/// copies are not resumed.
fn best_existing_copy<'a>(images: &'a [ImageInfo], job: &Job) -> Option<&'a ImageInfo> {
    let mine = || {
        images
            .iter()
            .filter(|img| is_copy_of(img, &job.source_image, &job.source_region))
    };
    mine()
        .find(|img| img.state == ImageState::Available)
        .or_else(|| mine().find(|img| img.state == ImageState::Pending))
}
