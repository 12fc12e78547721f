//! The replicator: runs a batch of decoded messages through the core, using the ports. The same code runs in
//! Lambda, in the tests and in the simulator. One file per phase: [`durable`] (what an item's effects are and
//! how they are made durable), [`fan_out`] (a source to one job per place), [`place`] (a place's step:
//! observe, decide in `core::place_step`, start copies), [`waiting`] (the place's waiting list: park, take, give the
//! lease back, wake-ups), [`outcome`] (what a job's decision then means), [`share`] (grants on the source and
//! launch permissions on copies), [`lifecycle`] (a deregistered source's copies).

mod admit;
mod batch;
mod copy_events;
mod deadline;
pub use deadline::{DEADLINE_MARGIN_SECONDS, DEADLINE_MARGIN_SHARE};
mod durable;
mod fan_out;
mod follow;
mod launch_templates;
mod lease;
mod lifecycle;
mod outputs;
pub use outputs::{completed_event, failed_event, finished_event, retired_event, COMPLETED, FAILED, FINISHED, RETIRED};
mod outcome;
mod place;
mod records;
pub use records::PlaceEc2;
mod retention;
mod settings;
pub use settings::{DeploymentSettings, DEFAULT_IN_USE_DAYS, DEFAULT_JOB_MAX_AGE_HOURS};
mod share;
mod sweep;
mod waiting;

use crate::core::errors::PortError;
use crate::core::facts::Fact;
use crate::core::ids::{AccountId, ImageId, Place, Region};
use crate::core::image::{ImageInfo, LaunchPermission};
use crate::core::job::{Job, Phase, ReplicationRequest};
use crate::ports::{
    CopyRecords, Ec2Regions, ImageBuilder, Leases, NoImageBuilder, NoLeases, NoOutputs, NoRecords, OutgoingMessage,
    Outputs, Queue,
};
use durable::Effect;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;
use tracing::info;

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Replicate an image (an EventBridge event or a work item).
    Request(ReplicationRequest),
    /// Resume jobs (a continuation).
    Jobs(Vec<Job>),
    /// A source image was deregistered: stop its pending copies (and more, with DEREGISTER_COPIES_WITH_SOURCE).
    SourceGone { image: ImageId, region: Region },
    /// A source image was disabled: its copies follow it (DISABLE_COPIES_WITH_SOURCE).
    SourceDisabled { image: ImageId, region: Region },
    /// An EC2 Image Builder image build version became available: replicate the AMIs it made.
    ImageBuilt { arn: String },
    /// The scheduled sweep, as of `time` (RFC 3339): find what events missed.
    Sweep { time: String },
    /// A copy event says `image` failed, at `region` of `account` (the event's account): if it is a copy of
    /// ours, replace it now rather than at its job's next poll.
    CopyFailed { image: ImageId, region: Region, account: Option<AccountId> },
    /// Watched replications: say when all places of a source are done (PUBLISH_EVENTS).
    Watch(Vec<crate::core::watch::Watch>),
    /// Look at the waiting jobs of these places (a wake-up); `check`: only if some wait (a copy event's).
    Wake { places: Vec<Place>, check: bool },
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
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BatchReport {
    /// What happened (for metrics and completion events).
    pub facts: Vec<Fact>,
    /// Ids of the items that must be delivered again (something of theirs could not be made durable).
    pub retry: Vec<String>,
    /// Reasons of the messages stored in the dead-letter queue.
    pub dead_lettered: Vec<String>,
    /// Jobs whose copy is available and shared.
    pub completed: Vec<(Job, ImageId)>,
    /// Jobs that ended without a copy and without a failure (their source was deregistered), with the reason.
    pub stopped: Vec<(Job, String)>,
}

type Once<T> = Arc<OnceCell<Result<T, PortError>>>;
type Memo<K, T> = Mutex<HashMap<K, Once<T>>>;

/// Per-invocation memory shared by the jobs of a batch.
#[derive(Default)]
struct Invocation {
    /// Launch permissions of each source, read at most once per invocation.
    permissions: Memo<(ImageId, Region), Vec<LaunchPermission>>,
    /// What a target account was granted on a source so that it can copy it, at most once per invocation.
    grants: Memo<(ImageId, Region, AccountId), ()>,
    /// Sources as EC2 shows them, read at most once per invocation (admission reads a batch's in one call per
    /// source region; granting, copy events and the place step use the same answers).
    sources: Memo<(ImageId, Region), Option<ImageInfo>>,
    completed: Mutex<Vec<(Job, ImageId)>>,
    /// Copies shared in this invocation, to mark so at its end (one CreateTags per place).
    shared: Mutex<Vec<(Place, ImageId)>>,
    /// Families whose copies were shared at a place in this invocation, for retention (RETAIN_COPIES).
    retain: Mutex<Vec<(Place, String, crate::core::retention::Retention, u32)>>,
    stopped: Mutex<Vec<(Job, String)>>,
    facts: Mutex<Vec<Fact>>,
    /// Who holds a place's admission lease taken by this invocation (unique per invocation).
    holder: String,
    /// No new work starts after this time (epoch seconds): [`DEADLINE_MARGIN_SECONDS`] before Lambda's deadline.
    cutoff: Option<f64>,
    /// Whether a lasting failure of the admission table was logged in this invocation (once is enough).
    admission_table_reported: std::sync::atomic::AtomicBool,
    /// Sources' launch permissions read by this invocation, per source region (paced: `share`).
    source_reads: Mutex<BTreeMap<Region, u32>>,
    /// Leases this invocation holds, given back with their waiting lists' changes once the batch is durable.
    releases: Mutex<Vec<waiting::Release>>,
}

/// The cell of `key` in one of the invocation's memories.
fn once<K: std::hash::Hash + Eq, T>(map: &Memo<K, T>, key: K) -> Once<T> {
    map.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default().clone()
}

fn push<T>(list: &Mutex<Vec<T>>, value: T) {
    list.lock().unwrap_or_else(|e| e.into_inner()).push(value);
}

/// The time now, in epoch seconds (the simulator's is virtual).
pub type Clock = Arc<dyn Fn() -> f64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()))
}

pub struct Replicator<R, Q, B = NoImageBuilder> {
    settings: Arc<DeploymentSettings>,
    ec2: R,
    queue: Q,
    image_builder: B,
    clock: Clock,
    outputs: Arc<dyn Outputs>,
    leases: Arc<dyn Leases>,
    records: Arc<dyn CopyRecords>,
}

impl<R: Ec2Regions, Q: Queue> Replicator<R, Q, NoImageBuilder> {
    pub fn new(settings: Arc<DeploymentSettings>, ec2: R, queue: Q) -> Self {
        Self {
            settings,
            ec2,
            queue,
            image_builder: NoImageBuilder,
            clock: system_clock(),
            outputs: Arc::new(NoOutputs),
            leases: Arc::new(NoLeases),
            records: Arc::new(NoRecords),
        }
    }
}

impl<R: Ec2Regions, Q: Queue, B: ImageBuilder> Replicator<R, Q, B> {
    /// The same replicator, reading EC2 Image Builder builds with `image_builder`.
    pub fn with_image_builder<B2: ImageBuilder>(self, image_builder: B2) -> Replicator<R, Q, B2> {
        Replicator {
            settings: self.settings,
            ec2: self.ec2,
            queue: self.queue,
            image_builder,
            clock: self.clock,
            outputs: self.outputs,
            leases: self.leases,
            records: self.records,
        }
    }

    /// The same replicator, keeping its record of copies in the source's own region in `records`.
    pub fn with_records(mut self, records: Arc<dyn CopyRecords>) -> Self {
        self.set_records(records);
        self
    }

    /// Keeps the record of copies in `records` from now on.
    pub fn set_records(&mut self, records: Arc<dyn CopyRecords>) {
        self.records = records;
    }

    /// EC2 at `place` (`home`: the function's own account), with the function's record of its copies there
    /// ([`PlaceEc2`]).
    pub(crate) fn at(&self, place: &Place, home: &AccountId) -> Result<PlaceEc2<R::Ec2>, PortError> {
        Ok(PlaceEc2::new(self.ec2.at(place)?, place.clone(), Some(home), self.records.clone()))
    }

    /// The same replicator, taking a place's admission lease from `leases`.
    pub fn with_leases(mut self, leases: Arc<dyn Leases>) -> Self {
        self.set_leases(leases);
        self
    }

    /// Takes a place's admission lease from `leases` from now on.
    pub fn set_leases(&mut self, leases: Arc<dyn Leases>) {
        self.leases = leases;
    }

    /// The same replicator, publishing completion events and putting SSM parameters through `outputs`.
    pub fn with_outputs(mut self, outputs: Arc<dyn Outputs>) -> Self {
        self.outputs = outputs;
        self
    }

    /// The same replicator, telling time with `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Now, in epoch seconds.
    pub fn now(&self) -> f64 {
        (self.clock)()
    }

    pub fn settings(&self) -> &DeploymentSettings {
        &self.settings
    }

    /// Processes a batch: fan-outs and the jobs of all places run concurrently; per place, one set of calls
    /// covers every job of the batch. Each item ends acknowledged (its effects are durable) or in `retry`.
    /// `home` is the function's own account.
    pub async fn process(&self, items: Vec<Item>, home: &AccountId) -> BatchReport {
        self.process_until(items, home, None).await
    }

    /// [`Self::process`] for an invocation that must answer by `deadline` (epoch seconds): from
    /// [`DEADLINE_MARGIN_SECONDS`] before it, no new work starts (no place is observed, no copy started, no step of
    /// a share begun, no retention run); what is left goes back on the queue unchanged, as continuations, so it
    /// comes back without counting as a failure. Fan-outs and sweeps start with the invocation and make a few calls,
    /// each bounded by the SDK's operation timeout, as is every call already under way.
    pub async fn process_until(&self, items: Vec<Item>, home: &AccountId, deadline: Option<f64>) -> BatchReport {
        let batch = self.sort(&items, home);
        // A shorter function timeout than the template's (cargo lambda's default is 30 s) keeps a share of it too.
        let cutoff = deadline::cutoff(deadline, self.now());
        let invocation = Invocation { holder: lease::holder_id(self.now()), cutoff, ..Invocation::default() };
        let invocation = &invocation;
        let effects = self.handle(batch, home, invocation).await;
        self.mark_shared(invocation).await;
        let touched = std::mem::take(&mut *invocation.retain.lock().unwrap_or_else(|e| e.into_inner()));
        if self.past_cutoff(invocation) {
            // Best effort at any time: the next share or sweep of these families retires what this one leaves.
            info!(families = touched.len(), "the invocation's deadline is near: retention is left for later");
        } else {
            self.retain(touched, home, invocation).await;
        }

        let (mut report, list_failed) = self.make_durable(&items, effects, home).await;
        // Only now, with the taken jobs' next messages durable, do the places' waiting lists let them go.
        self.release_places(&items, invocation, list_failed, &mut report).await;
        report.completed = std::mem::take(&mut *invocation.completed.lock().unwrap_or_else(|e| e.into_inner()));
        report.stopped = std::mem::take(&mut *invocation.stopped.lock().unwrap_or_else(|e| e.into_inner()));
        let mut facts = std::mem::take(&mut *invocation.facts.lock().unwrap_or_else(|e| e.into_inner()));
        facts.append(&mut report.facts);
        report.facts = facts;
        self.publish_outcomes(&report).await;
        report
    }
}

/// Drops duplicate jobs of a batch (the same source to the same place, e.g. from a duplicated event), keeping
/// the most advanced one: a waiting job over a copying one, then the one with the fewest consecutive failures
/// (which are the only counts a job still takes from its message: the rest is read from EC2).
fn dedup_jobs(jobs: Vec<(usize, Job)>) -> Vec<(usize, Job)> {
    let rank = |j: &Job| (matches!(j.phase, Phase::Copy), j.retries.saturating_add(j.throttles));
    let mut kept: Vec<(usize, Job)> = Vec::with_capacity(jobs.len());
    let mut index: HashMap<(ImageId, Region, Place), usize> = HashMap::new();
    for (i, job) in jobs {
        match index.get(&job.key()) {
            Some(&k) if rank(&job) < rank(&kept[k].1) => kept[k] = (i, job),
            Some(_) => {}
            None => {
                index.insert(job.key(), kept.len());
                kept.push((i, job));
            }
        }
    }
    kept
}

/// A message that puts `request` back on the work queue after `delay_seconds`.
fn resend(request: &ReplicationRequest, delay_seconds: u32) -> Effect {
    Effect::Send(OutgoingMessage { body: request.body(), delay_seconds })
}
