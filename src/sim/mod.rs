//! An in-memory EC2 + SQS over a virtual clock, implementing the same ports as the AWS adapters. It models what
//! the AWS documentation says about copies: each stays `pending` for a duration drawn per copy, a destination
//! region accepts at most `copy_limit` concurrent copies (`ResourceLimitExceeded` beyond), ClientToken makes
//! CopyImage idempotent, launch permissions and S3 permissions are not copied, only the owner's non-`aws:` tags
//! are copied and only when asked. SQS delays, visibility timeouts, redelivery and the redrive to a dead-letter
//! queue are modelled too, and faults (throttling, failed copies) can be injected.

mod copy;
mod ec2;
mod queue;
pub mod routing;
mod world;

pub use ec2::{SimEc2, SimEffect, SimRegions};
pub use queue::SimQueue;
pub use world::{CopyRecord, Faults, QueuedMessage, SimConfig, SimImage, SimSnapshot, World, AWS_MANAGED_EBS_KEY};

use crate::core::errors::PortError;
use crate::core::ids::{AccountId, ImageId, Place};
use crate::ports::{BuiltAmi, ImageBuilder, OutgoingEvent, OutgoingMessage, Outputs, PortFuture};
use crate::service::{BatchReport, Item, Replicator};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The shared state every simulated port reads and writes.
pub type Shared = Arc<Mutex<World>>;

pub(crate) fn lock(world: &Shared) -> std::sync::MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|e| e.into_inner())
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
    /// Real time spent inside the handler (the production code, not the simulator's bookkeeping is included).
    pub handler_time: Duration,
    /// Reports of every invocation, in order.
    pub reports: Vec<BatchReport>,
    /// Every job completed (copy available and shared), with the virtual time in milliseconds.
    pub completions: Vec<(u64, crate::core::job::Job, crate::core::ids::ImageId)>,
    /// The event source mapping's MaximumBatchingWindowInSeconds: once a message is visible, the mapping
    /// gathers messages this long before it invokes the function (0: at once).
    pub batching_window_seconds: u64,
}

impl Simulation {
    pub fn new(world: World, settings: crate::service::Settings) -> Self {
        let account = world.account.clone();
        let world = Arc::new(Mutex::new(world));
        let replicator =
            Replicator::new(Arc::new(settings), SimRegions::new(world.clone()), SimQueue::new(world.clone()))
                .with_image_builder(SimImageBuilder { world: world.clone() })
                .with_outputs(Arc::new(SimOutputs { world: world.clone() }))
                .with_clock({
                    let world = world.clone();
                    Arc::new(move || world::SIM_EPOCH_SECS as f64 + lock(&world).now_ms as f64 / 1000.0)
                });
        Self {
            world,
            replicator,
            account,
            invocations: 0,
            handler_time: Duration::ZERO,
            reports: Vec::new(),
            completions: Vec::new(),
            batching_window_seconds: 0,
        }
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

    /// Runs one invocation with the next visible batch (as the event source mapping would). `false` when
    /// no message is visible now.
    pub async fn invoke_once(&mut self, batch_size: usize) -> bool {
        self.invoke_concurrently(1, batch_size).await > 0
    }

    /// Runs up to `concurrency` invocations at once, each with its own batch, interleaving at every port call
    /// (as racing Lambda instances do). Returns how many invocations ran.
    pub async fn invoke_concurrently(&mut self, concurrency: usize, batch_size: usize) -> usize {
        let (batches, crashed): (Vec<Vec<QueuedMessage>>, bool) = {
            let mut w = lock(&self.world);
            let batches: Vec<_> = (0..concurrency).map(|_| w.receive(batch_size)).filter(|b| !b.is_empty()).collect();
            let crashed = !batches.is_empty() && w.faults.crash_rate > 0.0 && w.random() < w.faults.crash_rate;
            w.faults.discard_sends = crashed;
            (batches, crashed)
        };
        if batches.is_empty() {
            return 0;
        }
        let started = Instant::now();
        let account = &self.account;
        let replicator = &self.replicator;
        let reports = futures::future::join_all(batches.iter().map(|batch| {
            let items: Vec<Item> = batch
                .iter()
                .map(|m| Item { id: m.id.clone(), body: m.body.clone(), message: crate::entry::decode_body(&m.body) })
                .collect();
            replicator.process(items, account)
        }))
        .await;
        self.handler_time += started.elapsed();
        self.invocations += batches.len() as u64;
        let mut w = lock(&self.world);
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
