//! The replicator: runs a batch of decoded messages through the core, using the ports. The same code runs in
//! Lambda, in the tests and in the simulator.

use crate::core::admission;
use crate::core::errors::{ErrorClass, PortError};
use crate::core::ids::{AccountId, ImageId, Region};
use crate::core::image::{ImageInfo, ImageState, LaunchPermission, Tag};
use crate::core::job::{Continuation, Job, Phase, ReplicationRequest, JOBS_PER_MESSAGE};
use crate::core::plan::{self, Readiness};
use crate::core::provenance::{client_token, is_copy_of, provenance_tags};
use crate::core::rules::{self, EncryptionPolicy};
use crate::core::share::{self, SharePolicy};
use crate::core::step::{self, Decision, RequestDecision, StepPolicy};
use crate::ports::{CopyRequest, Ec2, Ec2Regions, OutgoingMessage, Queue};
use futures::future::join_all;
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;
use tracing::{error, info, warn, Instrument};

/// CopyImage calls in flight at once per region and invocation (the SDK's adaptive retry paces them further).
const COPY_CONCURRENCY: usize = 8;

/// What the replicator needs to know from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub target_regions: Vec<Region>,
    pub tag_filter: Option<Tag>,
    /// Concurrent copies to allow per destination region (MAX_CONCURRENT_COPIES_PER_REGION).
    pub max_copies_per_region: u32,
    pub step: StepPolicy,
    pub share: SharePolicy,
    pub encryption: EncryptionPolicy,
    /// COPY_DESCRIPTION_TEMPLATE; `None`: copies keep the source's description.
    pub description_template: Option<String>,
    /// EXTRA_TAGS, put on every copy and its snapshots.
    pub extra_tags: Vec<Tag>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            target_regions: Vec::new(),
            tag_filter: None,
            max_copies_per_region: 100,
            step: StepPolicy::default(),
            share: SharePolicy { copy_source_permissions: true, ..SharePolicy::default() },
            encryption: EncryptionPolicy::default(),
            description_template: None,
            extra_tags: Vec::new(),
        }
    }
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Replicate an image (an EventBridge event or a work item).
    Request(ReplicationRequest),
    /// Resume jobs (a continuation).
    Jobs(Vec<Job>),
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
    /// Ids of the items that must be delivered again (something of theirs could not be made durable).
    pub retry: Vec<String>,
    /// Reasons of the messages stored in the dead-letter queue.
    pub dead_lettered: Vec<String>,
    /// Jobs whose copy is available and shared.
    pub completed: Vec<(Job, ImageId)>,
}

/// What one item's work asks for. An item is acknowledged when all its effects are durable.
#[derive(Debug)]
enum Effect {
    /// Put the job (back) on the work queue.
    Enqueue { job: Job, delay_seconds: u32 },
    /// Put this message on the work queue.
    Send(OutgoingMessage),
    /// Store `body` in the dead-letter queue with the reason.
    DeadLetter { body: String, reason: String },
    /// Nothing durable can be made now: let SQS deliver the item again.
    Retry(String),
}

type SourcePermissions = Arc<OnceCell<Result<Vec<LaunchPermission>, PortError>>>;

/// Per-invocation memory shared by the jobs of a batch.
#[derive(Default)]
struct Invocation {
    /// Launch permissions of each source, read at most once per invocation.
    permissions: Mutex<HashMap<(ImageId, Region), SourcePermissions>>,
    completed: Mutex<Vec<(Job, ImageId)>>,
}

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

    /// Processes a batch: fan-outs and jobs of all regions run concurrently; per region, one set of calls
    /// covers every job of the batch. Each item ends acknowledged (its effects are durable) or in `retry`.
    pub async fn process(&self, items: Vec<Item>, account: &AccountId) -> BatchReport {
        let mut effects: Vec<(usize, Effect)> = Vec::new();
        let mut requests = Vec::new();
        let mut jobs: Vec<(usize, Job)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match &item.message {
                Err(reason) => {
                    warn!(message_id = %item.id, phase = "decode", error = %reason, "undecodable message");
                    let reason = format!("undecodable message: {reason}");
                    effects.push((i, Effect::DeadLetter { body: item.body.clone(), reason }));
                }
                Ok(Message::Ignore(reason)) => {
                    info!(message_id = %item.id, phase = "decode", reason = %reason, "nothing to do")
                }
                Ok(Message::Request(r)) => requests.push((i, r)),
                Ok(Message::Jobs(list)) => jobs.extend(list.iter().map(|j| (i, j.clone()))),
            }
        }
        let mut by_region: BTreeMap<Region, Vec<(usize, Job)>> = BTreeMap::new();
        for (i, job) in dedup_jobs(jobs) {
            by_region.entry(job.destination.clone()).or_default().push((i, job));
        }

        let invocation = Invocation::default();
        let fan_outs = join_all(requests.into_iter().map(|(i, r)| async move {
            self.fan_out(r, account).await.into_iter().map(move |e| (i, e)).collect::<Vec<_>>()
        }));
        let regions = join_all(
            by_region.into_iter().map(|(region, jobs)| self.advance_region(region, jobs, account, &invocation)),
        );
        let (fanned, advanced) = tokio::join!(fan_outs, regions);
        effects.extend(fanned.into_iter().flatten());
        effects.extend(advanced.into_iter().flatten());

        let mut report = self.make_durable(&items, effects).await;
        report.completed = invocation.completed.into_inner().unwrap_or_else(|e| e.into_inner());
        report
    }

    /// Sends what the effects ask for: continuations grouped per destination region and delay (one message
    /// carries up to [`JOBS_PER_MESSAGE`] jobs), and dead letters. Items whose effects failed are retried.
    async fn make_durable(&self, items: &[Item], effects: Vec<(usize, Effect)>) -> BatchReport {
        let mut report = BatchReport::default();
        let mut retry: BTreeSet<usize> = BTreeSet::new();
        let mut groups: BTreeMap<(Region, u32), Vec<(usize, Job)>> = BTreeMap::new();
        let mut dead = Vec::new();
        let mut raw = Vec::new();
        for (i, effect) in effects {
            match effect {
                Effect::Retry(reason) => {
                    warn!(message_id = %items[i].id, phase = "retry", reason = %reason, "message will be delivered again");
                    retry.insert(i);
                }
                Effect::Enqueue { job, delay_seconds } => {
                    groups.entry((job.destination.clone(), delay_seconds)).or_default().push((i, job))
                }
                Effect::DeadLetter { body, reason } => dead.push((i, body, reason)),
                Effect::Send(message) => raw.push((i, message)),
            }
        }

        let dead_results = join_all(dead.iter().map(|(_, body, reason)| self.queue.dead_letter(body, reason))).await;
        for ((i, _, reason), result) in dead.into_iter().zip(dead_results) {
            match result {
                Ok(true) => {
                    warn!(message_id = %items[i].id, phase = "dead_letter", reason = %reason, "sent to the dead-letter queue");
                    report.dead_lettered.push(reason);
                }
                Ok(false) => {
                    warn!(message_id = %items[i].id, phase = "dead_letter", reason = %reason,
                        "can never succeed; no DEAD_LETTER_QUEUE_URL, left to the queue's redrive policy");
                    retry.insert(i);
                }
                Err(e) => {
                    warn!(message_id = %items[i].id, phase = "dead_letter", reason = %reason, error = %e, "dead-lettering failed");
                    retry.insert(i);
                }
            }
        }

        let mut messages = Vec::new();
        let mut owners: Vec<Vec<usize>> = Vec::new();
        for (i, message) in raw {
            messages.push(message);
            owners.push(vec![i]);
        }
        for ((_, delay_seconds), jobs) in groups {
            for chunk in jobs.chunks(JOBS_PER_MESSAGE) {
                let list: Vec<Job> = chunk.iter().map(|(_, j)| j.clone()).collect();
                messages.push(OutgoingMessage { body: Continuation::body(&list), delay_seconds });
                owners.push(chunk.iter().map(|(i, _)| *i).collect());
            }
        }
        if !messages.is_empty() {
            for (owner, result) in owners.into_iter().zip(self.queue.send(&messages).await) {
                if let Err(e) = result {
                    warn!(phase = "enqueue", error = %e, "could not enqueue a continuation; its messages will be delivered again");
                    retry.extend(owner);
                }
            }
        }
        report.retry = retry.into_iter().map(|i| items[i].id.clone()).collect();
        report
    }

    /// Reads the source image and makes one copy job per destination region.
    async fn fan_out(&self, request: &ReplicationRequest, account: &AccountId) -> Vec<Effect> {
        let span =
            tracing::info_span!("fan_out", image = %request.image, region = %request.source_region, phase = "fan_out");
        async {
            let dead = |reason: String| vec![Effect::DeadLetter { body: request.body(), reason }];
            let ec2 = self.ec2.region(&request.source_region);
            let image = match ec2.describe_image(&request.image).await {
                Ok(Some(image)) => image,
                Ok(None) => {
                    return dead(format!("source image {} not found in {}", request.image, request.source_region))
                }
                Err(e) => {
                    warn!(error = %e, "could not read the source image");
                    return match step::on_request_error(request, &e, &self.settings.step) {
                        RequestDecision::Resend { request, delay_seconds } => {
                            vec![Effect::Send(OutgoingMessage { body: request.body(), delay_seconds })]
                        }
                        RequestDecision::GiveUp { reason } => dead(reason),
                    };
                }
            };
            let wanted = rules::wanted_encryption(request.encrypted, &self.settings.encryption);
            if let Some(skip) = plan::skip_reason(&image, account, self.settings.tag_filter.as_ref()) {
                // A Marketplace AMI shared with this account is not merely someone else's: say what to do.
                if let (plan::Skip::NotOwned { .. }, Some(why)) = (&skip, rules::cannot_copy(&image, account, wanted)) {
                    return dead(why);
                }
                info!(reason = %skip, "skipped");
                return vec![];
            }
            match plan::source_readiness(&image) {
                Readiness::Ready => {}
                Readiness::NotYet => {
                    info!("source image is still pending; checking again later");
                    let delay_seconds = self.settings.step.poll_seconds;
                    return vec![Effect::Send(OutgoingMessage { body: request.body(), delay_seconds })];
                }
                Readiness::Never(reason) => return dead(reason),
            }
            if let Some(why) = rules::cannot_copy(&image, account, wanted) {
                return dead(why);
            }
            let destinations =
                plan::destinations(&request.source_region, request.targets.as_deref(), &self.settings.target_regions);
            info!(destinations = ?destinations.iter().map(Region::as_str).collect::<Vec<_>>(), "fanned out");
            plan::fan_out(&image, &request.source_region, &destinations)
                .into_iter()
                .map(|mut job| {
                    job.encrypt = request.encrypted;
                    Effect::Enqueue { job, delay_seconds: 0 }
                })
                .collect()
        }
        .instrument(span)
        .await
    }

    /// Advances every job of one destination region with as few calls as the region allows:
    /// one DescribeImages for the pending images (the in-flight count, and which waiting copies are still
    /// pending), one for existing copies of the sources to copy, one for waiting copies that are no longer
    /// pending; then CopyImage for as many jobs as the limit has room for.
    async fn advance_region(
        &self,
        region: Region,
        jobs: Vec<(usize, Job)>,
        account: &AccountId,
        invocation: &Invocation,
    ) -> Vec<(usize, Effect)> {
        let ec2 = self.ec2.region(&region);
        // One DescribeImages polls every copy of the batch in this region: with few copies, poll less often.
        let policy = &StepPolicy {
            poll_seconds: step::poll_seconds_for(&self.settings.step, jobs.len()),
            ..self.settings.step.clone()
        };
        let mut waiting = Vec::new();
        let mut to_copy = Vec::new();
        for (i, job) in jobs {
            match &job.phase {
                Phase::Wait { copy_image } => waiting.push((i, copy_image.clone(), job)),
                Phase::Copy => to_copy.push((i, job)),
            }
        }
        let sources: Vec<ImageId> =
            to_copy.iter().map(|(_, j)| j.source_image.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        // Without jobs to copy, the in-flight count is not needed: one lookup of the waiting copies does.
        let (pending, existing) = tokio::join!(
            async {
                if to_copy.is_empty() {
                    Ok(vec![])
                } else {
                    ec2.pending_images().await
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
        let pending = match pending {
            Ok(p) => p,
            Err(e) => {
                warn!(region = %region, error = %e, "could not count the copies in flight");
                let all = waiting.into_iter().map(|(i, _, j)| (i, j)).chain(to_copy);
                return all.map(|(i, job)| (i, self.decision_effect(step::on_error(&job, &e, policy), &job))).collect();
            }
        };

        let mut decided: Vec<(usize, Job, Decision)> = Vec::new();
        let (still_pending, settled): (Vec<_>, Vec<_>) =
            waiting.into_iter().partition(|(_, copy, _)| pending.contains(copy));
        for (i, copy, job) in still_pending {
            let decision = step::on_copy_observed(&job, &copy, Some(&ImageState::Pending), policy);
            decided.push((i, job, decision));
        }
        if !settled.is_empty() {
            let ids: Vec<ImageId> = settled.iter().map(|(_, c, _)| c.clone()).collect();
            let observed = ec2.describe_own_images(&ids).await;
            for (i, copy, job) in settled {
                let decision = match &observed {
                    Ok(images) => {
                        let state = images.iter().find(|img| img.id == copy).map(|img| &img.state);
                        step::on_copy_observed(&job, &copy, state, policy)
                    }
                    Err(e) => step::on_error(&job, e, policy),
                };
                decided.push((i, job, decision));
            }
        }

        let mut candidates = Vec::new();
        for (i, job) in to_copy {
            match &existing {
                Err(e) => decided.push((i, job.clone(), step::on_error(&job, e, policy))),
                Ok(images) => match best_existing_copy(images, &job) {
                    Some(copy) => {
                        info!(image = %job.source_image, region = %region, phase = "copy", copy = %copy.id,
                            state = %copy.state, "copy already exists");
                        decided.push((
                            i,
                            job.clone(),
                            step::on_copy_observed(&job, &copy.id, Some(&copy.state), policy),
                        ));
                    }
                    None => candidates.push((i, job)),
                },
            }
        }
        let room = admission::room(self.settings.max_copies_per_region, pending.len());
        let (admitted, refused) = admission::admit(candidates, room);
        if !refused.is_empty() {
            info!(region = %region, phase = "copy", in_flight = pending.len(), admitted = admitted.len(),
                waiting = refused.len(), "region at its copy limit; jobs wait for capacity");
        }
        for (i, job) in refused {
            decided.push((i, job.clone(), step::wait_for_capacity(&job, policy)));
        }
        let started: Vec<_> = futures::stream::iter(admitted.into_iter().map(|(i, job)| {
            let ec2 = &ec2;
            let span = job_span(&job);
            async move {
                let request = self.copy_request(&job, account);
                let decision = match ec2.copy_image(&request).await {
                    Ok(copy) => {
                        info!(copy = %copy, attempt = job.failed_copies, "copy started");
                        step::on_copy_observed(&job, &copy, Some(&ImageState::Pending), policy)
                    }
                    Err(e) if e.class == ErrorClass::Capacity => {
                        info!(error = %e, "region at its copy limit (another invocation raced); waiting for capacity");
                        step::wait_for_capacity(&job, policy)
                    }
                    Err(e) if e.class == ErrorClass::Permanent => {
                        Decision::GiveUp { reason: rules::explain_copy_error(&job, &e), failed_copy: None }
                    }
                    Err(e) => {
                        warn!(error = %e, "CopyImage failed");
                        step::on_error(&job, &e, policy)
                    }
                };
                (i, job, decision)
            }
            .instrument(span)
        }))
        .buffer_unordered(COPY_CONCURRENCY)
        .collect()
        .await;
        decided.extend(started);

        join_all(decided.into_iter().map(|(i, job, decision)| {
            let span = job_span(&job);
            let ec2 = &ec2;
            async move { (i, self.carry_out(ec2, job, decision, account, invocation).await) }.instrument(span)
        }))
        .await
        .into_iter()
        .filter_map(|(i, effect)| effect.map(|e| (i, e)))
        .collect()
    }

    fn copy_request(&self, job: &Job, account: &AccountId) -> CopyRequest {
        let mut tags = provenance_tags(&job.source_image, &job.source_region);
        tags.extend(self.settings.extra_tags.iter().cloned());
        CopyRequest {
            source_image: job.source_image.clone(),
            source_region: job.source_region.clone(),
            name: job.name.clone().unwrap_or_else(|| job.source_image.to_string()),
            description: rules::describe_copy(self.settings.description_template.as_deref(), job),
            client_token: client_token(
                &job.source_image,
                &job.source_region,
                &job.destination,
                account,
                job.failed_copies,
            ),
            tags,
            copy_image_tags: true,
            encryption: rules::copy_encryption(job, &self.settings.encryption),
        }
    }

    /// The effect of a decision that needs no further call.
    fn decision_effect(&self, decision: Decision, job: &Job) -> Effect {
        match decision {
            Decision::Continue { job, delay_seconds } => Effect::Enqueue { job, delay_seconds },
            Decision::GiveUp { reason, .. } => {
                error!(reason = %reason, "replication failed");
                Effect::DeadLetter {
                    body: Continuation::body(std::slice::from_ref(job)),
                    reason: format!("{job}: {reason}"),
                }
            }
            Decision::Replace { job, .. } => Effect::Enqueue { job, delay_seconds: 0 },
            Decision::Share { .. } => Effect::Retry("internal: share decided without a copy".into()),
        }
    }

    /// Carries out a decision; `None` when the job is done.
    async fn carry_out(
        &self,
        ec2: &R::Ec2,
        job: Job,
        decision: Decision,
        account: &AccountId,
        invocation: &Invocation,
    ) -> Option<Effect> {
        let policy = &self.settings.step;
        match decision {
            Decision::Share { copy } => match self.share(ec2, &job, &copy, account, invocation).await {
                Ok(()) => {
                    info!(copy = %copy, "replicated");
                    invocation.completed.lock().unwrap_or_else(|e| e.into_inner()).push((job, copy));
                    None
                }
                Err(e) => {
                    warn!(copy = %copy, error = %e, "sharing failed");
                    let mut waiting = job;
                    waiting.phase = Phase::Wait { copy_image: copy };
                    Some(self.decision_effect(step::on_error(&waiting, &e, policy), &waiting))
                }
            },
            Decision::Replace { failed_copy, job: next } => match ec2.deregister_image(&failed_copy).await {
                Ok(()) => {
                    warn!(copy = %failed_copy, failed_copies = next.failed_copies, "failed copy deregistered; copying again");
                    Some(Effect::Enqueue { job: next, delay_seconds: 0 })
                }
                Err(e) => {
                    warn!(copy = %failed_copy, error = %e, "could not deregister the failed copy");
                    Some(self.decision_effect(step::on_error(&job, &e, policy), &job))
                }
            },
            Decision::GiveUp { failed_copy: Some(copy), reason } => {
                if let Err(e) = ec2.deregister_image(&copy).await {
                    warn!(copy = %copy, error = %e, "could not deregister the failed copy");
                }
                Some(self.decision_effect(Decision::GiveUp { reason, failed_copy: None }, &job))
            }
            other => Some(self.decision_effect(other, &job)),
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
        invocation: &Invocation,
    ) -> Result<(), PortError> {
        let policy = &self.settings.share;
        let source_permissions = if policy.copy_source_permissions {
            let cell = invocation
                .permissions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry((job.source_image.clone(), job.source_region.clone()))
                .or_default()
                .clone();
            cell.get_or_init(|| async {
                self.ec2.region(&job.source_region).launch_permissions(&job.source_image).await
            })
            .await
            .clone()?
        } else {
            Vec::new()
        };
        if let Some(time) = &job.deprecation_time {
            // Best effort: a copy that is not deprecated is still a good copy.
            match ec2.enable_deprecation(copy, time).await {
                Ok(()) => info!(copy = %copy, deprecate_at = %time, "deprecation time set as on the source"),
                Err(e) => warn!(copy = %copy, deprecate_at = %time, error = %e, "could not set the deprecation time"),
            }
        }
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

/// Drops duplicate jobs of a batch (the same source to the same destination, e.g. from a duplicated event),
/// keeping the most advanced one: a waiting job over a copying one.
fn dedup_jobs(jobs: Vec<(usize, Job)>) -> Vec<(usize, Job)> {
    let mut kept: Vec<(usize, Job)> = Vec::with_capacity(jobs.len());
    let mut index: HashMap<(ImageId, Region, Region), usize> = HashMap::new();
    for (i, job) in jobs {
        let key = (job.source_image.clone(), job.source_region.clone(), job.destination.clone());
        match index.get(&key) {
            Some(&k) if matches!(kept[k].1.phase, Phase::Copy) && matches!(job.phase, Phase::Wait { .. }) => {
                kept[k] = (i, job)
            }
            Some(_) => {}
            None => {
                index.insert(key, kept.len());
                kept.push((i, job));
            }
        }
    }
    kept
}

/// The copy to resume, if one exists: an available one first, else a pending one. Failed or deregistered
/// copies are not resumed.
fn best_existing_copy<'a>(images: &'a [ImageInfo], job: &Job) -> Option<&'a ImageInfo> {
    let mine = || images.iter().filter(|img| is_copy_of(img, &job.source_image, &job.source_region));
    mine()
        .find(|img| img.state == ImageState::Available)
        .or_else(|| mine().find(|img| img.state == ImageState::Pending))
}
