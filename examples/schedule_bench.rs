//! Scheduling benchmark: the production handler over the simulator (virtual clock, per-region copy limit,
//! ClientToken, EC2's request token buckets, SQS delays and redelivery, the admission table), run as the SQS
//! event source mapping runs it: template.yaml's batch size and batching window, and several invocations at once
//! (the template's default MaximumConcurrency, and 20). Against a naive baseline (start every copy at once, retry
//! ResourceLimitExceeded with exponential backoff, poll each copy every minute). Prints one JSON line per
//! scenario, events setting and concurrency, then one for the memory of a single invocation (in a process of its
//! own). `cargo run --release --features local --example schedule_bench`
//!
//! Knobs (environment): BENCH_SCENARIOS=A,B,C (which to run), BENCH_CONCURRENCY=2,20 (invocations at once),
//! BENCH_EVENTS_POLL (COPY_POLL_SECONDS of the rows with events, default 300), BENCH_EVENT_LOSS (share of copy
//! events lost, default 0.01), BENCH_CAPACITY_MAX (the longest wait for capacity, default 60), BENCH_DEBUG (the
//! handler's logs and late shares on stderr).
//!
//! Copy times: each AMI has a size (8-200 GiB, uniform) that fixes its copy time (10-40 min, uniform across
//! AMIs); each copy takes that time ±5%. `bound_s` is a lower bound on any schedule's makespan: per region, the
//! largest of the longest copy, the total copy time over the limit, and CopyImage's pacing (see
//! [`lower_bound_s`]); the largest over regions. `offline_lpt_ratio` is what the offline LPT schedule of the same
//! copies reaches over the same bound ([`offline_lpt_s`]). `cpu_ms_per_copy` is the handler's own time (the simulated ports'
//! bookkeeping taken out) per copy.

use ami_replicator::core::ids::{AccountId, ImageId, Region, KNOWN_REGIONS};
use ami_replicator::core::image::LaunchPermission;
use ami_replicator::core::provenance::{client_token, provenance_tags};
use ami_replicator::core::replication_rules::RuleSettings;
use ami_replicator::core::share::ShareSettings;
use ami_replicator::core::step::JobLimits;
use ami_replicator::ports::{CopyRequest, Ec2, Ec2Regions};
use ami_replicator::service::DeploymentSettings;
use ami_replicator::sim::{SimConfig, SimRegions, Simulation, World};
use serde_json::json;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ACCOUNT: &str = "123456789012";
const SOURCE_REGION: &str = "us-east-1";
const POLL_SECONDS: u32 = 60;

struct Scenario {
    name: &'static str,
    amis: usize,
    regions: usize,
    limit: u32,
}

fn account() -> AccountId {
    AccountId::parse(ACCOUNT).unwrap_or_else(|e| panic!("{e}"))
}

fn region(s: &str) -> Region {
    Region::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

fn destinations(n: usize) -> Vec<Region> {
    KNOWN_REGIONS
        .iter()
        .filter(|r| **r != SOURCE_REGION && !r.starts_with("cn-") && !r.contains("gov"))
        .take(n)
        .map(|r| region(r))
        .collect()
}

/// A world with `amis` source images in us-east-1, each with a size and the copy time it implies.
fn world(s: &Scenario, seed: u64) -> (World, Vec<ImageId>) {
    let config = SimConfig { copy_limit: s.limit, seed, ..SimConfig::default() };
    let mut world = World::new(account(), config);
    let partner = LaunchPermission::Account(AccountId::parse("111122223333").unwrap_or_else(|e| panic!("{e}")));
    let src = region(SOURCE_REGION);
    let ids: Vec<ImageId> = (0..s.amis)
        .map(|i| {
            let id = world.add_image(&src, &account(), &format!("image-{i}"), vec![], vec![partner.clone()]);
            let fraction = world.random();
            let image = world.image_mut(&src, &id).unwrap_or_else(|| unreachable!());
            image.info.size_gib = 8 + (fraction * 192.0) as u32;
            image.copy_seconds = Some(600 + (fraction * 1800.0) as u64);
            id
        })
        .collect();
    (world, ids)
}

fn event(image: &ImageId) -> String {
    json!({"version": "0", "id": "e", "detail-type": "EC2 AMI State Change", "source": "aws.ec2", "account": ACCOUNT,
        "region": SOURCE_REGION, "detail": {"ImageId": image.as_str(), "State": "available"}})
    .to_string()
}

/// The process's peak resident set size (VmHWM), in MB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    (kb / 1024.0 * 10.0).round() / 10.0
}

/// p50 and p99 of `values` (sorted here), 0 when empty.
fn percentiles(mut values: Vec<f64>) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1];
    (at(0.50), at(0.99))
}

/// The durations of the copies that succeeded (seconds), per destination region.
fn durations_by_region(w: &World) -> BTreeMap<&Region, Vec<f64>> {
    let mut durations: BTreeMap<&Region, Vec<f64>> = BTreeMap::new();
    for c in w.copies.iter().filter(|c| !c.fails) {
        durations.entry(&c.destination).or_default().push((c.ready_at_ms - c.started_ms) as f64 / 1000.0);
    }
    durations
}

/// A lower bound on any schedule's makespan, per destination region and the largest over regions: the longest
/// copy; the total copy time over the limit; and CopyImage's request bucket (100 calls at once, then one per
/// second), which starts the k-th copy (from 0) no earlier than max(0, k - 99) s, so with durations sorted
/// longest first, max over k of (max(0, k - 99) + d_k).
fn lower_bound_s(w: &World, limit: u32) -> f64 {
    durations_by_region(w)
        .values_mut()
        .map(|d| {
            d.sort_by(|a, b| b.total_cmp(a));
            let longest = d.first().copied().unwrap_or(0.0);
            let total: f64 = d.iter().sum();
            let pacing = d.iter().enumerate().map(|(k, d)| (k as f64 - 99.0).max(0.0) + d).fold(0.0, f64::max);
            longest.max(total / f64::from(limit)).max(pacing)
        })
        .fold(0.0, f64::max)
}

/// The makespan of the offline LPT schedule of the same copies (what a greedy scheduler that sees every copy and
/// its duration up front reaches): per region, longest first onto `limit` slots, the k-th start (from 0) no earlier
/// than max(0, k - 99) s (CopyImage's bucket); the largest over regions.
fn offline_lpt_s(w: &World, limit: u32) -> f64 {
    durations_by_region(w)
        .values_mut()
        .map(|d| {
            d.sort_by(|a, b| b.total_cmp(a));
            // Slots' free times in ms, smallest first.
            let mut free: BinaryHeap<Reverse<u64>> = (0..limit).map(|_| Reverse(0)).collect();
            let mut end = 0.0f64;
            for (k, d) in d.iter().enumerate() {
                let Reverse(at) = free.pop().unwrap_or(Reverse(0));
                let start = (at as f64 / 1000.0).max((k as f64 - 99.0).max(0.0));
                let finish = start + d;
                end = end.max(finish);
                free.push(Reverse((finish * 1000.0) as u64));
            }
            end
        })
        .fold(0.0, f64::max)
}

/// What one run measured, for [`figures`].
struct Run<'a> {
    strategy: &'a str,
    events: bool,
    /// Invocations at once (the event source mapping's MaximumConcurrency); `None`: the baseline, no Lambda.
    concurrency: Option<usize>,
    /// When each copy was shared: (virtual ms, source, destination, copy).
    completed: Vec<(u64, ImageId, Region, ImageId)>,
    invocations: u64,
    /// The handler's own time (without the simulator's).
    cpu: Duration,
}

/// The figures of one row, from the world after the run.
fn figures(s: &Scenario, w: &World, run: &Run) -> serde_json::Value {
    let done: HashSet<(ImageId, Region)> = run.completed.iter().map(|(_, i, r, _)| (i.clone(), r.clone())).collect();
    let mut shared_at: BTreeMap<&ImageId, u64> = BTreeMap::new();
    for (t, _, _, copy) in &run.completed {
        let e = shared_at.entry(copy).or_insert(*t);
        *e = (*e).min(*t);
    }
    // The handler's share latency: from the copy's event reaching the queue (with events; copies whose event was
    // lost have none) or the copy becoming available (without) to its launch permissions applied.
    let latencies: Vec<f64> = w
        .copies
        .iter()
        .filter(|c| !c.fails)
        .filter_map(|c| {
            let from = if run.events { c.event_at_ms? } else { c.ready_at_ms };
            shared_at.get(&c.image).map(|t| t.saturating_sub(from) as f64 / 1000.0)
        })
        .collect();
    if std::env::var("BENCH_DEBUG").is_ok() {
        for c in w.copies.iter().filter(|c| !c.fails) {
            if let Some(t) = shared_at.get(&c.image).filter(|t| t.saturating_sub(c.ready_at_ms) > 100_000) {
                eprintln!(
                    "late: {} {} started {} ready {} shared {}",
                    c.image,
                    c.destination,
                    c.started_ms / 1000,
                    c.ready_at_ms / 1000,
                    t / 1000
                );
            }
        }
    }
    let (share_p50, share_p99) = percentiles(latencies);
    let copies = done.len();
    // The replication is done when the last copy is first shared.
    let makespan_s = shared_at.values().copied().max().unwrap_or(0) as f64 / 1000.0;
    let mut per_pair: BTreeMap<(&ImageId, &Region), u32> = BTreeMap::new();
    for c in w.copies.iter().filter(|c| !c.fails) {
        *per_pair.entry((&c.source, &c.destination)).or_default() += 1;
    }
    let bound_s = lower_bound_s(w, s.limit);
    let lpt_s = offline_lpt_s(w, s.limit);
    let expected = s.amis * s.regions;
    let round = |x: f64, digits: i32| (x * 10f64.powi(digits)).round() / 10f64.powi(digits);
    json!({
        "scenario": s.name,
        "strategy": run.strategy,
        "events": run.events,
        "concurrency": run.concurrency,
        "amis": s.amis,
        "regions": s.regions,
        "limit": s.limit,
        "copies": copies,
        "makespan_s": makespan_s.round(),
        "bound_s": bound_s.round(),
        "makespan_ratio": round(makespan_s / bound_s, 3),
        "offline_lpt_ratio": round(lpt_s / bound_s, 3),
        "api_calls_per_copy": round(w.total_calls() as f64 / copies.max(1) as f64, 2),
        "copyimage_calls": w.calls.get("CopyImage").copied().unwrap_or(0),
        "limit_errors": w.limit_errors,
        "throttled_calls": w.throttle_errors,
        "throttled_share": round(w.throttle_errors as f64 / w.total_calls().max(1) as f64, 4),
        "lost": expected.saturating_sub(copies),
        "duplicates": per_pair.values().map(|n| n.saturating_sub(1)).sum::<u32>(),
        "peak_in_flight": w.peak_in_flight.values().copied().max().unwrap_or(0),
        "handler_share_p50_s": share_p50,
        "handler_share_p99_s": share_p99,
        "cpu_ms_per_copy": round(run.cpu.as_secs_f64() * 1000.0 / copies.max(1) as f64, 3),
        "api_calls": w.calls,
        "throttled_by_call": w.throttled,
        "lambda_invocations": run.invocations,
    })
}

/// The product; with `events`, copy events reach the queue 1-30 s after each copy is available (1% lost) and
/// COPY_EVENTS is on (polling every 300 s as the safety net).
async fn product(s: &Scenario, seed: u64, events: bool, concurrency: usize) -> serde_json::Value {
    let (mut world, ids) = world(s, seed);
    let poll = if events {
        std::env::var("BENCH_EVENTS_POLL").ok().and_then(|p| p.parse().ok()).unwrap_or(300)
    } else {
        POLL_SECONDS
    };
    if events {
        world.config.copy_events = Some((1, 30));
        world.config.copy_event_loss =
            std::env::var("BENCH_EVENT_LOSS").ok().and_then(|p| p.parse().ok()).unwrap_or(0.01);
    }
    let settings = DeploymentSettings {
        tag_filter: None,
        max_copies_per_region: s.limit,
        step: JobLimits {
            poll_seconds: poll,
            capacity_max_seconds: std::env::var("BENCH_CAPACITY_MAX")
                .ok()
                .and_then(|p| p.parse().ok())
                .unwrap_or(POLL_SECONDS),
            ..JobLimits::default()
        },
        copy_events: events,
        rule: RuleSettings {
            target_regions: destinations(s.regions),
            share: ShareSettings { copy_source_permissions: true, extra: vec![], allow_public: false },
            ..RuleSettings::unset()
        },
        ..DeploymentSettings::default()
    };
    let (batch_size, _, window) = mapping();
    let mut sim = Simulation::new(world, settings);
    sim.batching_window_seconds = window;
    for id in &ids {
        sim.send(&event(id));
    }
    sim.run_concurrently_until_idle(concurrency, batch_size, 30 * 86_400).await;
    let run = Run {
        strategy: if events { "ami-replicator+events" } else { "ami-replicator" },
        events,
        concurrency: Some(concurrency),
        completed: sim
            .completions
            .iter()
            .map(|(t, j, copy)| (*t, j.source_image.clone(), j.destination.clone(), copy.clone()))
            .collect(),
        invocations: sim.invocations,
        cpu: sim.handler_own_time,
    };
    let w = sim.world.lock().unwrap_or_else(|e| e.into_inner());
    figures(s, &w, &run)
}

/// The event source mapping as template.yaml deploys it: (BatchSize, MaximumConcurrency, batching window).
fn mapping() -> (usize, usize, u64) {
    ami_replicator::sim::routing::deployed_mapping().unwrap_or_else(|| panic!("template.yaml: no event source mapping"))
}

/// The peak RSS of an invocation with a batch of 100 messages (scenario C's sources, 16 regions, limit 300): the
/// fan-out of 100 events, then 100 messages of their jobs, in a process of its own (the figure is theirs, not the
/// benchmark's; the simulated world of 100 images is in it, the SDK's clients are not).
async fn one_invocation_rss() {
    let s = Scenario { name: "C", amis: 100, regions: 16, limit: 300 };
    let (world, ids) = world(&s, 42);
    let settings = DeploymentSettings {
        max_copies_per_region: s.limit,
        rule: RuleSettings { target_regions: destinations(s.regions), ..RuleSettings::unset() },
        ..DeploymentSettings::default()
    };
    let mut sim = Simulation::new(world, settings);
    for id in &ids {
        sim.send(&event(id));
    }
    // The fan-out of 100 sources, then the first steps of their 1,600 jobs (up to 100 messages each time), then
    // the wake-ups that start them once the burst has gathered (100 per place, as the bucket allows).
    for n in 0..4 {
        if n == 3 {
            let t = sim.world.lock().unwrap_or_else(|e| e.into_inner()).now_ms + 30_000;
            sim.world.lock().unwrap_or_else(|e| e.into_inner()).advance_to(t);
        }
        let next = sim.world.lock().unwrap_or_else(|e| e.into_inner()).next_event_at();
        if let Some(t) = next {
            sim.world.lock().unwrap_or_else(|e| e.into_inner()).advance_to(t);
        }
        sim.invoke_once(100).await;
    }
    let copies = sim.world.lock().unwrap_or_else(|e| e.into_inner()).copies.len();
    println!(
        "{}",
        json!({"measure": "one invocation, batch of 100 messages", "copies_started": copies, "peak_rss_mb": peak_rss_mb()})
    );
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Attempt { pair: usize, n: u32 },
    Poll { pair: usize, copy: ImageId },
}

/// Start every copy at once; on ResourceLimitExceeded retry after 60 s x 2^n (at most 4 h); poll every copy
/// every minute; share when available.
async fn naive(s: &Scenario, seed: u64) -> serde_json::Value {
    let (world, ids) = world(s, seed);
    let shared = Arc::new(Mutex::new(world));
    let regions = SimRegions::new(shared.clone());
    let pairs: Vec<(ImageId, Region)> =
        ids.iter().flat_map(|id| destinations(s.regions).into_iter().map(move |r| (id.clone(), r))).collect();
    let mut queue: BinaryHeap<Reverse<(u64, u64, Step)>> = BinaryHeap::new();
    let mut seq = 0;
    for pair in 0..pairs.len() {
        seq += 1;
        queue.push(Reverse((0, seq, Step::Attempt { pair, n: 0 })));
    }
    let partner = LaunchPermission::Account(AccountId::parse("111122223333").unwrap_or_else(|e| panic!("{e}")));
    let (mut completed, mut events, started) = (Vec::new(), 0u64, Instant::now());
    while let Some(Reverse((t, _, step))) = queue.pop() {
        shared.lock().unwrap_or_else(|e| e.into_inner()).advance_to(t);
        events += 1;
        seq += 1;
        match step {
            Step::Attempt { pair, n } => {
                let (src, dst) = &pairs[pair];
                let request = CopyRequest {
                    source_image: src.clone(),
                    source_region: region(SOURCE_REGION),
                    name: src.to_string(),
                    description: None,
                    client_token: client_token(src, &region(SOURCE_REGION), dst, &account(), 0),
                    tags: provenance_tags(src, &region(SOURCE_REGION)),
                    encryption: Default::default(),
                    completion_minutes: None,
                };
                match regions.region(dst).copy_image(&request).await {
                    Ok(copy) => queue.push(Reverse((t + 60_000, seq, Step::Poll { pair, copy }))),
                    Err(_) => {
                        let backoff = (60_000u64 << n.min(8)).min(4 * 3_600_000);
                        queue.push(Reverse((t + backoff, seq, Step::Attempt { pair, n: n + 1 })));
                    }
                }
            }
            Step::Poll { pair, copy } => {
                let ec2 = regions.region(&pairs[pair].1);
                let images = ec2.describe_own_images(std::slice::from_ref(&copy)).await.unwrap_or_default();
                let available = images.iter().any(|i| i.state == ami_replicator::core::image::ImageState::Available);
                if available && ec2.add_launch_permissions(&copy, std::slice::from_ref(&partner)).await.is_ok() {
                    completed.push((t, pairs[pair].0.clone(), pairs[pair].1.clone(), copy.clone()));
                } else {
                    queue.push(Reverse((t + 60_000, seq, Step::Poll { pair, copy })));
                }
            }
        }
    }
    let run = Run {
        strategy: "naive-baseline",
        events: false,
        concurrency: None,
        completed,
        invocations: events,
        cpu: started.elapsed(),
    };
    let w = shared.lock().unwrap_or_else(|e| e.into_inner());
    figures(s, &w, &run)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if std::env::var("BENCH_DEBUG").is_ok() {
        tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter("info").init();
    }
    if std::env::var("BENCH_RSS_CHILD").is_ok() {
        return one_invocation_rss().await;
    }
    let scenarios = [
        Scenario { name: "A", amis: 200, regions: 16, limit: 100 },
        Scenario { name: "B", amis: 30, regions: 4, limit: 100 },
        Scenario { name: "C", amis: 1000, regions: 16, limit: 300 },
    ];
    // BENCH_SCENARIOS=A,C runs only those; BENCH_CONCURRENCY=2,20 the concurrencies (default: the template's
    // MaximumConcurrency and 20).
    let only = std::env::var("BENCH_SCENARIOS").ok();
    let concurrencies: Vec<usize> = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .map(|c| c.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![mapping().1, 20]);
    for s in scenarios.iter().filter(|s| only.as_deref().is_none_or(|o| o.split(',').any(|n| n == s.name))) {
        for events in
            [false, true].into_iter().filter(|e| std::env::var("BENCH_EVENTS").map_or(true, |v| v == e.to_string()))
        {
            for &c in &concurrencies {
                println!("{}", product(s, 42, events, c).await);
            }
        }
        if s.name != "C" {
            println!("{}", naive(s, 42).await);
        }
    }
    // One invocation's memory, in a process of its own.
    let me = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    match std::process::Command::new(me).env("BENCH_RSS_CHILD", "1").env_remove("BENCH_DEBUG").output() {
        Ok(out) => print!("{}", String::from_utf8_lossy(&out.stdout)),
        Err(e) => eprintln!("could not measure one invocation's memory: {e}"),
    }
}
