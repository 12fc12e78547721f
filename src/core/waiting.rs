//! The jobs waiting for room at a place, kept where one admission sees them all (the place's item in the stack's
//! admission table, next to its lease): one entry per job, a hint of the function's own writing. An entry says
//! which source waits and how large it is (its priority); everything copying needs is read from EC2 again when it
//! is admitted (`trust::refresh_from_source`), and the copy is looked up by provenance first, as for any job.

use super::ids::{ImageId, Place, Region};
use super::job::Job;
use std::cmp::Reverse;

/// The prefix of an entry's attribute name in the place's item: `w:SOURCE_REGION:ami-...`.
pub const ENTRY_PREFIX: &str = "w:";

/// A waiting job, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub source_image: ImageId,
    pub source_region: Region,
    /// The source's size when the job was parked (GiB): larger first.
    pub size_gib: u32,
    /// When the job was made (epoch seconds): its age still ends it at JOB_MAX_AGE_HOURS.
    pub since: Option<i64>,
    /// A work item's wish for encryption.
    pub encrypt: Option<bool>,
}

impl Waiting {
    /// The entry of a job that needs a new copy (its place is the item's).
    pub fn of(job: &Job) -> Self {
        Self {
            source_image: job.source_image.clone(),
            source_region: job.source_region.clone(),
            size_gib: job.size_gib,
            since: job.since,
            encrypt: job.encrypt,
        }
    }

    /// The attribute name: one entry per source at a place, so parking a job twice keeps one.
    pub fn key(&self) -> String {
        format!("{ENTRY_PREFIX}{}:{}", self.source_region, self.source_image)
    }

    /// The attribute value: `SIZE SINCE ENCRYPT` (`-` for none; `y`/`n`).
    pub fn value(&self) -> String {
        let since = self.since.map_or("-".to_string(), |s| s.to_string());
        let encrypt = match self.encrypt {
            None => "-",
            Some(true) => "y",
            Some(false) => "n",
        };
        format!("{} {since} {encrypt}", self.size_gib)
    }

    /// An entry read back, or why it cannot be (written by another version, or by hand).
    pub fn parse(key: &str, value: &str) -> Result<Self, String> {
        let bad = || format!("waiting entry {key}={value:?} is not one this version writes");
        let rest = key.strip_prefix(ENTRY_PREFIX).ok_or_else(bad)?;
        let (region, image) = rest.split_once(':').ok_or_else(bad)?;
        let mut fields = value.split(' ');
        let size_gib = fields.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let since = match fields.next().ok_or_else(bad)? {
            "-" => None,
            s => Some(s.parse().map_err(|_| bad())?),
        };
        let encrypt = match fields.next().ok_or_else(bad)? {
            "-" => None,
            "y" => Some(true),
            "n" => Some(false),
            _ => return Err(bad()),
        };
        if fields.next().is_some() {
            return Err(bad());
        }
        Ok(Self {
            source_image: ImageId::parse(image).map_err(|_| bad())?,
            source_region: Region::parse(region).map_err(|_| bad())?,
            size_gib,
            since,
            encrypt,
        })
    }

    /// The job this entry stands for at `place`: to be admitted (its source read and judged) before anything.
    pub fn to_job(&self, place: &Place) -> Job {
        let mut job = Job::new(self.source_image.clone(), self.source_region.clone(), place.region.clone(), None, None);
        job.account = place.account.clone();
        job.size_gib = self.size_gib;
        job.since = self.since;
        job.encrypt = self.encrypt;
        job
    }

    /// Admission order: larger first (longest processing time first), then older, then by key (a total order).
    fn priority(&self) -> (Reverse<u32>, i64, String) {
        (Reverse(self.size_gib), self.since.unwrap_or(i64::MAX), self.key())
    }
}

/// The entries of a place's item, in admission order; entries that cannot be read are returned apart, with why
/// (removed by the caller, never admitted).
pub fn in_priority_order(raw: &[(String, String)]) -> (Vec<Waiting>, Vec<(String, String)>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (key, value) in raw {
        match Waiting::parse(key, value) {
            Ok(w) => good.push(w),
            Err(why) => bad.push((key.clone(), why)),
        }
    }
    good.sort_by_key(Waiting::priority);
    (good, bad)
}

/// What one admission at a place starts and keeps waiting, from the jobs of its own batch (checked against their
/// sources already) and the place's stored entries.
#[derive(Debug)]
pub struct Choice<T> {
    /// Jobs of the batch to start now.
    pub start: Vec<(T, Job)>,
    /// Stored entries to take now (each is admitted like any job before its copy starts).
    pub take: Vec<Waiting>,
    /// Jobs of the batch to park.
    pub park: Vec<(T, Job)>,
}

/// The longest `room` of all the place's waiting jobs, whoever brought them: the batch's candidates (`batch`,
/// the jobs that need a new copy) and the stored entries (`stored`). An entry for the same source as a batch job
/// is that job (the batch's, checked, stands for it).
/// Jobs still [`gathering`] at `now` are not started yet (a batch's are parked), unless they replace a failed copy.
pub fn choose<T>(batch: Vec<(T, Job)>, stored: Vec<Waiting>, room: usize, now: i64) -> Choice<T> {
    enum Candidate<T> {
        Batch(T, Box<Job>),
        Stored(Waiting),
    }
    let in_batch: std::collections::BTreeSet<String> = batch.iter().map(|(_, j)| Waiting::of(j).key()).collect();
    let mut all: Vec<(Waiting, Candidate<T>)> =
        batch.into_iter().map(|(t, j)| (Waiting::of(&j), Candidate::Batch(t, Box::new(j)))).collect();
    all.extend(stored.into_iter().filter(|w| !in_batch.contains(&w.key())).map(|w| (w.clone(), Candidate::Stored(w))));
    all.sort_by_key(|(w, _)| w.priority());
    let mut choice = Choice { start: Vec::new(), take: Vec::new(), park: Vec::new() };
    let mut n = 0;
    for (w, candidate) in all {
        // A copy that replaces a failed one does not wait for a burst: it is no part of one.
        let replaces = matches!(&candidate, Candidate::Batch(_, j) if j.failed_copies > 0);
        let admit = n < room && (replaces || !gathering(w.since, now));
        n += usize::from(admit);
        match (candidate, admit) {
            (Candidate::Batch(t, j), true) => choice.start.push((t, *j)),
            (Candidate::Batch(t, j), false) => choice.park.push((t, *j)),
            (Candidate::Stored(w), true) => choice.take.push(w),
            (Candidate::Stored(_), false) => {}
        }
    }
    choice
}

/// A new job waits this long before its place admits it (seconds since its fan-out or sweep), so that the jobs of
/// one burst (a fan-out of many sources reaches a place within seconds) are all seen by the admission that starts
/// the longest first, instead of the first to arrive taking the room.
pub const GATHER_SECONDS: i64 = 20;

/// Whether a job made at `since` is still gathering at `now` ([`GATHER_SECONDS`]). A job without a time is not.
pub fn gathering(since: Option<i64>, now: i64) -> bool {
    since.is_some_and(|s| s <= now && now < s + GATHER_SECONDS)
}

/// The delay of a poll of copies, on a grid of `poll` seconds shifted by `seed` (the deployment's account): every
/// copy is looked at at the same instants, so the messages of a place arrive together and one step covers them
/// (and admits from the waiting list once), however many admission rounds started them. Between half and one and
/// a half `poll`.
pub fn poll_on_grid(now: i64, poll: u32, seed: &str) -> u32 {
    let half = poll.max(2) / 2;
    half + next_on_grid(now + i64::from(half), poll, seed)
}

/// Seconds from `now` to the next instant (now included) of the grid of `period` seconds shifted by `seed`.
pub fn next_on_grid(now: i64, period: u32, seed: &str) -> u32 {
    use sha2::{Digest, Sha256};
    let period = i64::from(period.max(2));
    let digest = Sha256::digest(seed.as_bytes());
    let offset = i64::from(u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])) % period;
    (offset - now).rem_euclid(period) as u32
}

/// The wake-up's period when copies of ours are in flight at the place: their polls and copy events look at the
/// waiting list as they settle; the wake-up only catches what they miss (SQS allows at most 900 s).
pub const WAKE_SAFETY_SECONDS: u32 = 300;

/// When to look at a place whose jobs wait: with copies of ours in flight there (`own_in_flight`), only as a safety
/// net; otherwise (the place is full of other copies, or out of CopyImage tokens) at the capacity delay's ceiling;
/// and no later than when the first job still gathering may start (`gathered_in` seconds from now).
pub fn wake_delay(own_in_flight: usize, capacity_max_seconds: u32, gathered_in: Option<i64>) -> u32 {
    let delay =
        if own_in_flight > 0 { WAKE_SAFETY_SECONDS } else { capacity_max_seconds.clamp(1, WAKE_SAFETY_SECONDS) };
    gathered_in.map_or(delay, |g| delay.min(g.clamp(1, i64::from(WAKE_SAFETY_SECONDS)) as u32))
}

/// Whether a step that leaves `left` jobs waiting sends the place's wake-up in `delay` seconds: when none is due
/// between now and then (the wake-up being handled is due now, so its chain goes on; another that is on its way
/// and comes in time covers this one).
pub fn wake_needed(left: usize, wake_at: Option<f64>, now: f64, delay: u32) -> bool {
    left > 0 && wake_at.is_none_or(|t| t <= now + 1.0 || t > now + f64::from(delay) + 1.0)
}

/// Seconds until the first of `waiting` (their `since`) may start, if any is still gathering at `now`.
pub fn gathered_in(since: impl IntoIterator<Item = Option<i64>>, now: i64) -> Option<i64> {
    since.into_iter().filter(|s| gathering(*s, now)).flatten().map(|s| s + GATHER_SECONDS - now).min()
}

#[cfg(test)]
#[path = "waiting_tests.rs"]
mod tests;
