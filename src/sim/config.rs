//! How the simulated AWS behaves, and the faults a test injects.

use crate::core::ids::Region;

/// How the simulated AWS behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Concurrent copies a destination region accepts (the documented limit is 100).
    pub copy_limit: u32,
    /// A copy stays pending for a duration drawn uniformly from this range, in seconds.
    pub copy_seconds: (u64, u64),
    /// SQS visibility timeout of the work queue, in seconds.
    pub visibility_timeout_seconds: u64,
    /// SQS redrive: a message received more often than this goes to the dead-letter queue.
    pub max_receive_count: u32,
    /// Seed of the simulator's random numbers (copy durations, injected faults).
    pub seed: u64,
    /// Regions that reject paravirtual images.
    pub pv_unsupported: Vec<Region>,
    /// EventBridge delivers an `EC2 AMI State Change` (available) for each copy, through the region forwarders to
    /// the work queue, this many seconds after the copy is available (drawn per copy); `None`: no copy events.
    pub copy_events: Option<(u64, u64)>,
    /// Share of copy events lost (EventBridge is best effort).
    pub copy_event_loss: f64,
    /// Time-based copies: the cumulative throughput of concurrent copies per account and source-destination
    /// region pair, in MiB/s (2,000 by default, adjustable in AWS).
    pub copy_throughput_quota_mibps: u64,
    /// EC2's request token buckets per account, region and action (`super::throttle`); off: no call is
    /// throttled but by [`Faults`].
    pub request_buckets: bool,
    /// The work queue's MaximumMessageSize: a larger message is refused (MessageTooLong), and so is a batch whose
    /// messages add up to more (BatchRequestTooLong), as SQS does.
    pub max_message_bytes: usize,
    /// How long each EC2 call takes (milliseconds of tokio's clock, which the simulation's clock then includes:
    /// run such a test with tokio's time paused). 0: no time passes within an invocation.
    pub call_latency_ms: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            copy_limit: 100,
            copy_seconds: (600, 2400),
            visibility_timeout_seconds: 360,
            max_receive_count: 5,
            seed: 7,
            pv_unsupported: vec![],
            copy_events: None,
            copy_event_loss: 0.0,
            copy_throughput_quota_mibps: 2000,
            request_buckets: true,
            max_message_bytes: crate::core::messages::DEFAULT_MAX_MESSAGE_BYTES,
            call_latency_ms: 0,
        }
    }
}

/// Faults to inject.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Probability that any EC2 call answers RequestLimitExceeded.
    pub throttle_rate: f64,
    /// The next N EC2 calls answer RequestLimitExceeded.
    pub throttle_next: u32,
    /// Probability that a copy ends `failed` instead of `available`.
    pub fail_copy_rate: f64,
    /// The next N copies end `failed`.
    pub fail_next_copies: u32,
    /// The next N SendMessageBatch entries are refused.
    pub refuse_next_sends: u32,
    /// Probability that an invocation stops after its EC2 calls and before anything it sends is stored or its
    /// batch acknowledged (a crash or a timeout): its batch is delivered again after the visibility timeout.
    pub crash_rate: f64,
    /// Set while an invocation that will stop runs: it stops at its first SQS call.
    pub discard_sends: bool,
    /// Set once that invocation has stopped: nothing it does from then on takes effect.
    pub halted: bool,
    /// The next N PutEvents calls fail.
    pub fail_next_publishes: u32,
    /// Probability that the admission table fails a lease or a read of the function's record (a DynamoDB fault:
    /// InternalServerError).
    pub table_error_rate: f64,
}
