//! An in-memory EC2 + SQS over a virtual clock, implementing the same ports as the AWS adapters. It models what
//! the AWS documentation says about copies: each stays `pending` for a duration drawn per copy, a destination
//! region accepts at most `copy_limit` concurrent copies (`ResourceLimitExceeded` beyond), ClientToken makes
//! CopyImage idempotent, launch permissions and S3 permissions are not copied, only the owner's non-`aws:` tags
//! are copied and only when asked. SQS delays, visibility timeouts, redelivery and the redrive to a dead-letter
//! queue are modelled too, and faults (throttling, failed copies) can be injected.

mod config;
mod copy;
mod ec2;
mod lease;
mod queue;
pub mod routing;
mod templates;
pub mod throttle;
mod world;

pub use ec2::{SimEc2, SimEffect, SimRegions};
pub use lease::{SimLease, SimLeases, SimRecords};
pub use queue::SimQueue;
pub use world::{CopyRecord, Faults, QueuedMessage, SimConfig, SimImage, SimSnapshot, World, AWS_MANAGED_EBS_KEY};

use crate::core::errors::PortError;
use crate::core::ids::{AccountId, ImageId, Place};
use crate::ports::{BuiltAmi, ImageBuilder, OutgoingEvent, OutgoingMessage, Outputs, PortFuture};
use crate::service::{BatchReport, Item, Replicator};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Messages one ReceiveMessage returns at most.
const RECEIVE_MAX: usize = 10;

/// The shared state every simulated port reads and writes.
pub type Shared = Arc<Mutex<World>>;

/// The world, locked by a port call. The time the guard is held is the simulator's own work, added to
/// [`World::sim_time`] when it is dropped, so that a benchmark can tell the handler's time from the simulator's.
pub(crate) fn lock(world: &Shared) -> Locked<'_> {
    Locked { started: Instant::now(), guard: world.lock().unwrap_or_else(|e| e.into_inner()) }
}

pub(crate) struct Locked<'a> {
    started: Instant,
    guard: std::sync::MutexGuard<'a, World>,
}

impl std::ops::Deref for Locked<'_> {
    type Target = World;
    fn deref(&self) -> &World {
        &self.guard
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut World {
        &mut self.guard
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.guard.sim_time += self.started.elapsed();
    }
}

/// EC2 Image Builder over the simulated world's registered builds ([`World::image_builds`]).
#[derive(Clone)]
/// Completion events and SSM parameters in the simulated world (PutEvents, GetParameter, PutParameter).
pub struct SimOutputs {
    world: Shared,
}

impl Outputs for SimOutputs {
    fn publish<'a>(&'a self, events: &'a [OutgoingEvent]) -> PortFuture<'a, ()> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            let mut w = lock(&self.world);
            if w.faults.halted {
                return Err(PortError::transient("Halted", "the invocation has stopped"));
            }
            *w.calls.entry("PutEvents").or_default() += events.len().div_ceil(10) as u64;
            if w.faults.fail_next_publishes > 0 {
                w.faults.fail_next_publishes -= 1;
                return Err(PortError::from_code("InternalFailure", "PutEvents failed"));
            }
            let now = w.now_ms;
            w.published.extend(events.iter().map(|e| (now, e.clone())));
            Ok(())
        })
    }

    fn parameter<'a>(&'a self, place: &'a Place, name: &'a str) -> PortFuture<'a, Option<String>> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            let mut w = lock(&self.world);
            *w.calls.entry("GetParameter").or_default() += 1;
            let account = place.owner(&w.account).clone();
            Ok(w.parameters.get(&(account, place.region.clone(), name.to_string())).cloned())
        })
    }

    fn put_image_parameter<'a>(&'a self, place: &'a Place, name: &'a str, image: &'a ImageId) -> PortFuture<'a, ()> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            let mut w = lock(&self.world);
            if w.faults.halted {
                return Err(PortError::transient("Halted", "the invocation has stopped"));
            }
            *w.calls.entry("PutParameter").or_default() += 1;
            let account = place.owner(&w.account).clone();
            w.parameters.insert((account, place.region.clone(), name.to_string()), image.to_string());
            Ok(())
        })
    }
}

pub struct SimImageBuilder {
    world: Shared,
}

impl ImageBuilder for SimImageBuilder {
    async fn output_amis(&self, arn: &str) -> Result<Vec<BuiltAmi>, PortError> {
        tokio::task::yield_now().await;
        let mut w = lock(&self.world);
        *w.calls.entry("GetImage").or_default() += 1;
        let amis = w.image_builds.get(arn).ok_or_else(|| {
            PortError::from_code("ResourceNotFoundException", format!("image build version {arn} does not exist"))
        })?;
        Ok(amis
            .iter()
            .map(|(region, image, account)| BuiltAmi {
                region: region.clone(),
                image: image.clone(),
                account: Some(account.clone()),
            })
            .collect())
    }
}

/// A simulated deployment: the world, and the replicator running the production code over it.
pub struct Simulation {
    pub world: Shared,
    pub replicator: Replicator<SimRegions, SimQueue, SimImageBuilder>,
    pub account: AccountId,
    /// Lambda invocations made so far.
    pub invocations: u64,
    /// Real time spent inside the handler (the simulator's bookkeeping in its ports included).
    pub handler_time: Duration,
    /// [`Self::handler_time`] less the time spent inside the simulated ports: the handler's own work.
    pub handler_own_time: Duration,
    /// Reports of every invocation, in order.
    pub reports: Vec<BatchReport>,
    /// Every job completed (copy available and shared), with the virtual time in milliseconds.
    pub completions: Vec<(u64, crate::core::job::Job, crate::core::ids::ImageId)>,
    /// The event source mapping's MaximumBatchingWindowInSeconds: once a message is visible, the mapping
    /// gathers messages this long before it invokes the function (0: at once).
    pub batching_window_seconds: u64,
    /// The function's timeout: each invocation gets the deadline Lambda would give it (`None`: no deadline).
    pub function_timeout_seconds: Option<f64>,
    /// The longest invocation so far, by the simulation's clock (seconds).
    pub longest_invocation_seconds: f64,
}

impl Simulation {
    pub fn new(world: World, settings: crate::service::DeploymentSettings) -> Self {
        let account = world.account.clone();
        let mut world = world;
        // With call latency, time passes within an invocation too (tokio's clock, paused in such tests).
        world.latency_origin = (world.config.call_latency_ms > 0).then(tokio::time::Instant::now);
        let world = Arc::new(Mutex::new(world));
        let replicator =
            Replicator::new(Arc::new(settings), SimRegions::new(world.clone()), SimQueue::new(world.clone()))
                .with_image_builder(SimImageBuilder { world: world.clone() })
                .with_outputs(Arc::new(SimOutputs { world: world.clone() }))
                .with_leases(Arc::new(SimLeases::new(world.clone())))
                .with_records(Arc::new(SimRecords::new(world.clone())))
                .with_clock({
                    let world = world.clone();
                    Arc::new(move || {
                        let w = lock(&world);
                        let inside = w.latency_origin.map_or(0.0, |t| t.elapsed().as_secs_f64());
                        world::SIM_EPOCH_SECS as f64 + w.now_ms as f64 / 1000.0 + inside
                    })
                });
        Self {
            world,
            replicator,
            account,
            invocations: 0,
            handler_time: Duration::ZERO,
            handler_own_time: Duration::ZERO,
            reports: Vec::new(),
            completions: Vec::new(),
            batching_window_seconds: 0,
            function_timeout_seconds: None,
            longest_invocation_seconds: 0.0,
        }
    }

    /// The same deployment without the admission table (ADMISSION_TABLE unset): concurrent invocations may
    /// admit at one place at once.
    pub fn without_leases(mut self) -> Self {
        self.replicator.set_leases(Arc::new(crate::ports::NoLeases));
        self.replicator.set_records(Arc::new(crate::ports::NoRecords));
        self
    }

    /// Puts a message on the work queue (as EventBridge or a person would).
    pub fn send(&self, body: &str) {
        lock(&self.world).enqueue(&OutgoingMessage { body: body.to_string(), delay_seconds: 0 });
    }

    /// Puts an event on the home region's default bus: it reaches the work queue only when a rule of
    /// template.yaml routes it there (as deployed). Returns whether it did.
    pub fn put_event(&self, event: &str) -> bool {
        let routed = serde_json::from_str(event).is_ok_and(|e| routing::routed_at_home(&e));
        if routed {
            self.send(event);
        }
        routed
    }

    /// The Scheduled Event EventBridge sends for the sweep, at the virtual time now.
    pub fn scheduled_event(&self) -> String {
        let time = lock(&self.world).now_rfc3339();
        serde_json::json!({
            "version": "0", "id": "sweep", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": self.account.as_str(), "time": time, "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/ami-replicator-sweep"], "detail": {}
        })
        .to_string()
    }

    /// The schedule invokes the function directly with its Scheduled Event, at the virtual time now (as
    /// template.yaml's sweep rule does): an asynchronous invocation, which Lambda tries up to 3 times while it
    /// fails. The jobs it enqueues run with the next invocations of the queue.
    pub async fn invoke_schedule(&mut self) {
        let event = self.scheduled_event();
        for _ in 0..3 {
            let item = Item { id: "sweep".into(), body: event.clone(), message: crate::entry::decode_body(&event) };
            let report = self.replicator.process(vec![item], &self.account).await;
            self.invocations += 1;
            let retry = !report.retry.is_empty();
            self.reports.push(report);
            if !retry {
                break;
            }
        }
    }

    /// Runs one invocation with the next visible batch (as the event source mapping would). `false` when
    /// no message is visible now.
    pub async fn invoke_once(&mut self, batch_size: usize) -> bool {
        self.invoke_concurrently(1, batch_size).await > 0
    }

    /// Runs up to `concurrency` invocations at once, each with its own batch of up to `batch_size` messages,
    /// interleaving at every port call (as racing Lambda instances do). The visible messages are dealt to the
    /// invocations ten at a time, as the event source mapping's pollers receive them. Returns how many
    /// invocations ran.
    pub async fn invoke_concurrently(&mut self, concurrency: usize, batch_size: usize) -> usize {
        let (batches, crashed): (Vec<Vec<QueuedMessage>>, bool) = {
            let mut w = lock(&self.world);
            // As the event source mapping's pollers do: each ReceiveMessage takes up to 10 messages, and the
            // pollers (one per concurrent invocation) take turns until their batches are full or nothing is left.
            let mut batches: Vec<Vec<QueuedMessage>> = vec![Vec::new(); concurrency.max(1)];
            'receive: loop {
                let mut took = false;
                for batch in batches.iter_mut() {
                    let room = batch_size.saturating_sub(batch.len()).min(RECEIVE_MAX);
                    if room == 0 {
                        continue;
                    }
                    let got = w.receive(room);
                    if got.is_empty() {
                        break 'receive;
                    }
                    took = true;
                    batch.extend(got);
                }
                if !took {
                    break;
                }
            }
            batches.retain(|b| !b.is_empty());
            let crashed = !batches.is_empty() && w.faults.crash_rate > 0.0 && w.random() < w.faults.crash_rate;
            w.faults.discard_sends = crashed;
            (batches, crashed)
        };
        if batches.is_empty() {
            return 0;
        }
        let sim_before = lock(&self.world).sim_time;
        let started = Instant::now();
        let account = &self.account;
        let replicator = &self.replicator;
        let began = replicator.now();
        let deadline = self.function_timeout_seconds.map(|t| began + t);
        let reports = futures::future::join_all(batches.iter().map(|batch| {
            let items: Vec<Item> = batch
                .iter()
                .map(|m| Item { id: m.id.clone(), body: m.body.clone(), message: crate::entry::decode_record(&m.body) })
                .collect();
            replicator.process_until(items, account, deadline)
        }))
        .await;
        self.longest_invocation_seconds = self.longest_invocation_seconds.max(replicator.now() - began);
        {
            // The time the invocation's calls took is the world's too: copies progress meanwhile.
            let mut w = lock(&self.world);
            if let Some(origin) = w.latency_origin {
                let spent = origin.elapsed().as_millis() as u64;
                let now = w.now_ms + spent;
                w.advance_to(now);
                w.latency_origin = Some(tokio::time::Instant::now());
            }
        }
        let elapsed = started.elapsed();
        self.handler_time += elapsed;
        self.invocations += batches.len() as u64;
        let mut w = lock(&self.world);
        self.handler_own_time += elapsed.saturating_sub(w.sim_time.saturating_sub(sim_before));
        if crashed {
            // Nothing of these invocations was acknowledged: every message comes back after its visibility timeout.
            w.faults.discard_sends = false;
            w.faults.halted = false;
            w.crashes += 1;
            return batches.len();
        }
        for (batch, report) in batches.iter().zip(&reports) {
            w.settle_batch(batch, &report.retry);
            self.completions.extend(report.completed.iter().map(|(job, copy)| (w.now_ms, job.clone(), copy.clone())));
        }
        drop(w);
        self.reports.extend(reports);
        batches.len()
    }

    /// Runs invocations until the queue is empty, advancing the virtual clock whenever nothing is visible.
    /// Stops after `max_virtual_seconds` of virtual time. Returns the virtual time at the end, in seconds.
    pub async fn run_until_idle(&mut self, batch_size: usize, max_virtual_seconds: u64) -> u64 {
        self.run_concurrently_until_idle(1, batch_size, max_virtual_seconds).await
    }

    /// [`Self::run_until_idle`] with up to `concurrency` invocations at once.
    pub async fn run_concurrently_until_idle(
        &mut self,
        concurrency: usize,
        batch_size: usize,
        max_virtual_seconds: u64,
    ) -> u64 {
        loop {
            if self.invoke_concurrently(concurrency, batch_size).await == 0 {
                let mut w = lock(&self.world);
                match w.next_event_at() {
                    Some(t) if t <= max_virtual_seconds * 1000 => w.advance_to(t + self.batching_window_seconds * 1000),
                    _ => return w.now_ms / 1000,
                }
            }
        }
    }
}
