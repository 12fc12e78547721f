//! The ports of the stack's admission table: a place's admission lease and its waiting list ([`Leases`]), and the
//! function's own record of the copies CopyImage returned it ([`CopyRecords`]). Only the function writes there.

use super::PortFuture;
use crate::core::errors::PortError;
use crate::core::ids::ImageId;

/// A place's waiting jobs as its item holds them (`core::waiting` reads the entries), and when the place's
/// wake-up message is due (`None`: none was sent).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WaitingList {
    /// `(attribute name, value)` of each entry.
    pub entries: Vec<(String, String)>,
    pub wake_at: Option<f64>,
}

/// What the lease's holder changes in its place's waiting list as it gives the lease back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WaitingChanges {
    /// Entries to add (`(attribute name, value)`).
    pub park: Vec<(String, String)>,
    /// Entries to remove (attribute names): the jobs admitted or ended.
    pub unpark: Vec<String>,
    /// When the place's next wake-up message is due, when one was sent.
    pub wake_at: Option<f64>,
}

impl WaitingChanges {
    pub fn is_empty(&self) -> bool {
        self.park.is_empty() && self.unpark.is_empty() && self.wake_at.is_none()
    }
}

/// What [`Leases::acquire`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lease {
    /// The caller holds the lease now. `released_at`: when the previous holder gave it back (epoch seconds), if
    /// it did (`None`: never taken before, or its holder's time ran out): nobody admitted at the place since then.
    /// `waiting`: the place's waiting jobs, read by the same write.
    Taken { released_at: Option<f64>, waiting: WaitingList },
    /// Another invocation holds it until this time (epoch seconds).
    HeldUntil(f64),
}

/// Admission at a place one invocation at a time: a lease per place (its account and region) in a store every
/// invocation shares (a DynamoDB table in production, the world in the simulator), and the place's waiting jobs
/// in the same item, so that one admission sees them all. EC2 stays the truth about copies; the lease only orders
/// the invocations that read the place's in-flight count and start copies, and an entry is only a hint.
pub trait Leases: Send + Sync {
    /// Takes the lease `key` for `holder` until `until` (epoch seconds), when nobody holds it or its holder's time
    /// ran out at `now`: one conditional write, which answers the place's waiting list as it was. MUST be atomic:
    /// of two callers at once, at most one gets `Taken`.
    fn acquire<'a>(&'a self, key: &'a str, holder: &'a str, now: f64, until: f64) -> PortFuture<'a, Lease>;

    /// Gives the lease `key` back at `now` when `holder` still holds it (one conditional write; otherwise
    /// nothing): the next holder learns when.
    fn release<'a>(&'a self, key: &'a str, holder: &'a str, now: f64) -> PortFuture<'a, ()> {
        Box::pin(async move { self.release_with(key, holder, now, WaitingChanges::default()).await })
    }

    /// [`Self::release`], changing the waiting list in the same write. The changes are made even when the lease
    /// was no longer the caller's (then by a write of their own).
    fn release_with<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        now: f64,
        changes: WaitingChanges,
    ) -> PortFuture<'a, ()>;

    /// Adds `entries` to the waiting list of `key` at `now`, whoever holds the lease (one write per 100 entries):
    /// answers when the place's wake-up is due, as it was. An entry that is there already is replaced.
    fn park<'a>(&'a self, key: &'a str, entries: &'a [(String, String)], now: f64) -> PortFuture<'a, Option<f64>>;

    /// The waiting list of `key`, read consistently, without the lease (one read).
    fn waiting<'a>(&'a self, key: &'a str) -> PortFuture<'a, WaitingList>;

    /// Records that the wake-up message of `key` is due at `at` (after it was sent).
    fn set_wake<'a>(&'a self, key: &'a str, at: f64) -> PortFuture<'a, ()>;

    /// Whether waiting jobs can be kept here (`false`: they travel on the queue).
    fn keeps_waiting_jobs(&self) -> bool {
        true
    }
}

/// No lease store (ADMISSION_TABLE unset): every acquire succeeds as if the place had never been admitted at,
/// so concurrent invocations may race at a place and only AWS's own limit (`ResourceLimitExceeded`,
/// back-pressure) stops an overshoot. Nothing can be parked: waiting jobs travel on the queue.
pub struct NoLeases;

impl Leases for NoLeases {
    fn acquire<'a>(&'a self, _key: &'a str, _holder: &'a str, now: f64, _until: f64) -> PortFuture<'a, Lease> {
        Box::pin(async move { Ok(Lease::Taken { released_at: Some(now - 3600.0), waiting: WaitingList::default() }) })
    }

    fn release_with<'a>(&'a self, _k: &'a str, _h: &'a str, _now: f64, _c: WaitingChanges) -> PortFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn park<'a>(&'a self, _key: &'a str, _entries: &'a [(String, String)], _now: f64) -> PortFuture<'a, Option<f64>> {
        Box::pin(async { Err(PortError::permanent("NotConfigured", "no admission table to keep waiting jobs")) })
    }

    fn waiting<'a>(&'a self, _key: &'a str) -> PortFuture<'a, WaitingList> {
        Box::pin(async { Ok(WaitingList::default()) })
    }

    fn set_wake<'a>(&'a self, _key: &'a str, _at: f64) -> PortFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn keeps_waiting_jobs(&self) -> bool {
        false
    }
}

/// The function's own record of the copies CopyImage returned it, kept where only the function writes (the
/// stack's admission table in production). EC2's record of a copy's source (`SourceImageId`,
/// `SourceImageRegion`) cannot tell a copy from an image made with CreateImage from an instance of the source in
/// the source's own region; there (a target account's copy in the source region) this record decides.
pub trait CopyRecords: Send + Sync {
    /// Records that CopyImage returned `copy` at the place `place_key` (`ACCOUNT/REGION`). Recording what is
    /// recorded is success.
    fn record<'a>(&'a self, place_key: &'a str, copy: &'a ImageId) -> PortFuture<'a, ()>;

    /// Which of `ids` at the place `place_key` are recorded, in as few reads as the store allows.
    fn recorded<'a>(&'a self, place_key: &'a str, ids: &'a [ImageId]) -> PortFuture<'a, Vec<ImageId>>;
}

/// No record store (ADMISSION_TABLE unset): nothing is recorded, so no image in its source's own region is ever
/// taken for the product's copy. A deployment that copies there (TARGET_ACCOUNTS) needs the table; the
/// configuration refuses it otherwise.
pub struct NoRecords;

impl CopyRecords for NoRecords {
    fn record<'a>(&'a self, _place_key: &'a str, _copy: &'a ImageId) -> PortFuture<'a, ()> {
        Box::pin(async {
            Err(PortError::permanent(
                "NotConfigured",
                "no record store (ADMISSION_TABLE) for copies in the source region",
            ))
        })
    }

    fn recorded<'a>(&'a self, _place_key: &'a str, _ids: &'a [ImageId]) -> PortFuture<'a, Vec<ImageId>> {
        Box::pin(async { Ok(vec![]) })
    }
}
