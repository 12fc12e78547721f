//! The admission leases' table (DynamoDB in a deployment) in the simulated world: two conditional puts (take,
//! give back), atomic under the world's lock as DynamoDB's conditional writes are.

use super::{lock, Shared};
use crate::core::errors::PortError;
use crate::ports::{Lease, Leases, PortFuture, WaitingChanges, WaitingList};
use std::collections::BTreeMap;

/// A place's item: its lease, and the jobs waiting there.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimLease {
    /// Who holds it; `None`: given back.
    pub holder: Option<String>,
    /// Until when (epoch seconds).
    pub until: f64,
    /// When it was given back.
    pub released_at: Option<f64>,
    /// The waiting jobs' entries (attribute name, value).
    pub waiting: BTreeMap<String, String>,
    /// When the place's wake-up message is due.
    pub wake_at: Option<f64>,
}

/// DynamoDB's item size limit (400 KB): the names and values of the attributes.
pub const ITEM_BYTES: usize = 400 * 1024;

impl SimLease {
    fn list(&self) -> WaitingList {
        WaitingList {
            entries: self.waiting.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            wake_at: self.wake_at,
        }
    }

    /// Applies `changes` as one write would: refused whole when the item would outgrow DynamoDB's limit.
    fn change(&mut self, park: &[(String, String)], unpark: &[String], wake_at: Option<f64>) -> Result<(), PortError> {
        let mut next = self.waiting.clone();
        for key in unpark {
            next.remove(key);
        }
        next.extend(park.iter().cloned());
        let bytes: usize = next.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() + 100;
        if bytes > ITEM_BYTES {
            return Err(PortError::from_code(
                "ValidationException",
                "Item size to update has exceeded the maximum allowed size",
            ));
        }
        self.waiting = next;
        if wake_at.is_some() {
            self.wake_at = wake_at;
        }
        Ok(())
    }
}

/// One call to the table: refused once the invocation has stopped, counted, and (`faulty`: the calls that
/// `Faults::table_error_rate` applies to) sometimes failed as DynamoDB can.
fn table_call(w: &mut super::World, op: &'static str, faulty: bool) -> Result<(), PortError> {
    if w.faults.halted {
        return Err(PortError::transient("Halted", "the invocation has stopped"));
    }
    *w.calls.entry(op).or_default() += 1;
    if faulty && w.faults.table_error_rate > 0.0 && w.random() < w.faults.table_error_rate {
        return Err(PortError::from_code("InternalServerError", "simulated DynamoDB fault"));
    }
    Ok(())
}

/// Entries one write changes (the update expression's size): more take more writes.
const ENTRIES_PER_WRITE: usize = 100;

fn writes(entries: usize) -> usize {
    entries.div_ceil(ENTRIES_PER_WRITE).max(1)
}

pub struct SimLeases {
    world: Shared,
}

impl SimLeases {
    pub fn new(world: Shared) -> Self {
        Self { world }
    }
}

impl Leases for SimLeases {
    fn acquire<'a>(&'a self, key: &'a str, holder: &'a str, now: f64, until: f64) -> PortFuture<'a, Lease> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            let mut w = lock(&self.world);
            table_call(&mut w, "UpdateItem", true)?;
            let item = w.leases.entry(key.to_string()).or_default();
            if item.holder.is_some() && item.until >= now {
                return Ok(Lease::HeldUntil(item.until));
            }
            let released_at = item.released_at.take().filter(|_| item.holder.is_none());
            let waiting = item.list();
            item.holder = Some(holder.to_string());
            item.until = until;
            Ok(Lease::Taken { released_at, waiting })
        })
    }

    fn release_with<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        now: f64,
        changes: WaitingChanges,
    ) -> PortFuture<'a, ()> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            let mut w = lock(&self.world);
            for _ in 0..writes(changes.park.len() + changes.unpark.len()) {
                table_call(&mut w, "UpdateItem", false)?;
            }
            let item = w.leases.entry(key.to_string()).or_default();
            if item.holder.as_deref() == Some(holder) {
                item.holder = None;
                item.until = 0.0;
                item.released_at = Some(now);
            }
            item.change(&changes.park, &changes.unpark, changes.wake_at)
        })
    }

    fn park<'a>(&'a self, key: &'a str, entries: &'a [(String, String)], _now: f64) -> PortFuture<'a, Option<f64>> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            let mut w = lock(&self.world);
            for _ in 0..writes(entries.len()) {
                table_call(&mut w, "UpdateItem", true)?;
            }
            let item = w.leases.entry(key.to_string()).or_default();
            let wake_at = item.wake_at;
            item.change(entries, &[], None)?;
            Ok(wake_at)
        })
    }

    fn waiting<'a>(&'a self, key: &'a str) -> PortFuture<'a, WaitingList> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            let mut w = lock(&self.world);
            table_call(&mut w, "GetItem", true)?;
            Ok(w.leases.get(key).map(SimLease::list).unwrap_or_default())
        })
    }

    fn set_wake<'a>(&'a self, key: &'a str, at: f64) -> PortFuture<'a, ()> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            let mut w = lock(&self.world);
            table_call(&mut w, "UpdateItem", false)?;
            w.leases.entry(key.to_string()).or_default().wake_at = Some(at);
            Ok(())
        })
    }
}

/// The function's record of its copies (the admission table's copy items in a deployment): only the function
/// writes it, so nothing an insider does in EC2 adds to it.
pub struct SimRecords {
    world: Shared,
}

impl SimRecords {
    pub fn new(world: Shared) -> Self {
        Self { world }
    }
}

impl crate::ports::CopyRecords for SimRecords {
    fn record<'a>(&'a self, place_key: &'a str, copy: &'a crate::core::ids::ImageId) -> PortFuture<'a, ()> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            let mut w = lock(&self.world);
            table_call(&mut w, "PutItem", false)?;
            w.copy_records.insert((place_key.to_string(), copy.clone()));
            Ok(())
        })
    }

    fn recorded<'a>(
        &'a self,
        place_key: &'a str,
        ids: &'a [crate::core::ids::ImageId],
    ) -> PortFuture<'a, Vec<crate::core::ids::ImageId>> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            let mut w = lock(&self.world);
            table_call(&mut w, "BatchGetItem", true)?;
            Ok(ids
                .iter()
                .filter(|id| w.copy_records.contains(&(place_key.to_string(), (*id).clone())))
                .cloned()
                .collect())
        })
    }
}
