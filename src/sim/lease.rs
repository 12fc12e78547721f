//! The admission leases' table (DynamoDB in a deployment) in the simulated world: two conditional puts (take,
//! give back), atomic under the world's lock as DynamoDB's conditional writes are.

use super::{lock, Shared};
use crate::core::errors::PortError;
use crate::ports::{Lease, Leases, PortFuture};

/// A lease's item.
#[derive(Debug, Clone, PartialEq)]
pub struct SimLease {
    /// Who holds it; `None`: given back.
    pub holder: Option<String>,
    /// Until when (epoch seconds).
    pub until: f64,
    /// When it was given back.
    pub released_at: Option<f64>,
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
            table_call(&mut w, "PutItem", true)?;
            let old = w.leases.get(key).cloned();
            match old {
                Some(l) if l.holder.is_some() && l.until >= now => Ok(Lease::HeldUntil(l.until)),
                _ => {
                    let released_at = old.and_then(|l| l.released_at.filter(|_| l.holder.is_none()));
                    let lease = SimLease { holder: Some(holder.to_string()), until, released_at: None };
                    w.leases.insert(key.to_string(), lease);
                    Ok(Lease::Taken { released_at })
                }
            }
        })
    }

    fn release<'a>(&'a self, key: &'a str, holder: &'a str, now: f64) -> PortFuture<'a, ()> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            let mut w = lock(&self.world);
            table_call(&mut w, "PutItem", false)?;
            if let Some(lease) = w.leases.get_mut(key).filter(|l| l.holder.as_deref() == Some(holder)) {
                *lease = SimLease { holder: None, until: 0.0, released_at: Some(now) };
            }
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
