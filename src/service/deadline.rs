//! The invocation's deadline: from when no new work starts, and the check the phases make before they start some.

use super::{Invocation, Replicator};
use crate::ports::{Ec2Regions, ImageBuilder, Queue};
use tracing::warn;

/// No new work starts this close to the invocation's deadline: a call started before it ends within the SDK's
/// operation timeout (20 s, `aws::OPERATION_TIMEOUT`), the copies shared are marked so (one CreateTags per place,
/// as long again at most), and what is done is then made durable (a few SendMessageBatch calls) before Lambda
/// stops the invocation.
pub const DEADLINE_MARGIN_SECONDS: f64 = 45.0;

/// With a function timeout shorter than 120 s, the margin is this share of the time the invocation has.
pub const DEADLINE_MARGIN_SHARE: f64 = 0.375;

/// When no new work starts, for an invocation that began at `started` and must answer by `deadline` (epoch
/// seconds): [`DEADLINE_MARGIN_SECONDS`] before it, or [`DEADLINE_MARGIN_SHARE`] of a shorter time. A deadline
/// already past at the start is not one Lambda set (cargo lambda sends 600000 ms): ignored, with a warning.
pub(super) fn cutoff(deadline: Option<f64>, started: f64) -> Option<f64> {
    let deadline = deadline.filter(|d| {
        let sane = *d > started;
        if !sane {
            warn!(deadline = d, now = started, "the invocation's deadline is already past: ignored");
        }
        sane
    })?;
    Some(deadline - DEADLINE_MARGIN_SECONDS.min((deadline - started) * DEADLINE_MARGIN_SHARE))
}

impl<R: Ec2Regions, Q: Queue, B: ImageBuilder> Replicator<R, Q, B> {
    /// Whether the invocation is past its cut-off: no new work starts (see [`Self::process_until`]).
    pub(super) fn past_cutoff(&self, invocation: &Invocation) -> bool {
        invocation.cutoff.is_some_and(|c| self.now() >= c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_keeps_a_margin_of_the_deadline_and_ignores_one_already_past() {
        assert_eq!(cutoff(Some(1120.0), 1000.0), Some(1075.0), "Lambda's 120 s: 45 s before it");
        assert_eq!(cutoff(Some(1030.0), 1000.0), Some(1018.75), "30 s: 3/8 of it");
        assert_eq!(cutoff(Some(600.0), 1_796_617_710.0), None, "cargo lambda's 600000 ms");
        assert_eq!(cutoff(None, 1000.0), None);
    }
}
