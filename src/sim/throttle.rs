//! EC2's request throttling as the EC2 API reference describes it ("Request throttling"): a token bucket per
//! account, region and action (or category of actions). A call takes a token; a call that finds none answers
//! `RequestLimitExceeded`, and spends its token all the same (the bucket goes below zero, down to minus its
//! capacity). Buckets refill every
//! second up to their capacity.

use super::world::World;
use crate::core::errors::PortError;
use crate::core::ids::{AccountId, Region};

/// A bucket: its name (actions that share it share the name), capacity and refill per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketSpec {
    pub name: &'static str,
    pub capacity: f64,
    pub refill_per_second: f64,
}

/// The bucket an EC2 action draws from (EC2's defaults): non-mutating actions 100 and 20/s; CopyImage 100 and
/// 1/s; ModifyImageAttribute, ModifySnapshotAttribute and DeregisterImage 100 and 5/s each; CreateTags 100 and
/// 10/s; every other mutating action 50 and 5/s, shared.
pub fn bucket_of(op: &'static str) -> BucketSpec {
    let spec = |name, capacity, refill_per_second| BucketSpec { name, capacity, refill_per_second };
    match op {
        "CopyImage" => spec(op, 100.0, 1.0),
        "ModifyImageAttribute" | "ModifySnapshotAttribute" | "DeregisterImage" => spec(op, 100.0, 5.0),
        "CreateTags" => spec(op, 100.0, 10.0),
        _ if ["Describe", "Get", "List"].iter().any(|p| op.starts_with(p)) => spec("non-mutating", 100.0, 20.0),
        _ => spec("mutating", 50.0, 5.0),
    }
}

/// A bucket's level, and when it was last refilled (virtual milliseconds).
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    pub tokens: f64,
    pub at_ms: u64,
}

impl World {
    /// Takes a token for `op` by `account` in `region`; `Err(RequestLimitExceeded)` when there was none (the
    /// refused call spends its token too, down to minus the capacity). Always `Ok` when [`super::SimConfig::request_buckets`] is off.
    pub(super) fn take_token(
        &mut self,
        op: &'static str,
        account: &AccountId,
        region: &Region,
    ) -> Result<(), PortError> {
        if !self.config.request_buckets {
            return Ok(());
        }
        let spec = bucket_of(op);
        let now = self.now_ms;
        let bucket = self
            .buckets
            .entry((account.clone(), region.clone(), spec.name))
            .or_insert(Bucket { tokens: spec.capacity, at_ms: now });
        let elapsed = now.saturating_sub(bucket.at_ms) as f64 / 1000.0;
        bucket.tokens = (bucket.tokens + elapsed * spec.refill_per_second).min(spec.capacity);
        bucket.at_ms = now;
        let refused = bucket.tokens < 1.0;
        bucket.tokens = (bucket.tokens - 1.0).max(-spec.capacity);
        if refused {
            if std::env::var("SIM_DEBUG_THROTTLE").is_ok() {
                eprintln!("throttled {op} {account} {region} at {} s", now / 1000);
            }
            return Err(PortError::from_code("RequestLimitExceeded", format!("{op}: Request limit exceeded.")));
        }
        Ok(())
    }
}
