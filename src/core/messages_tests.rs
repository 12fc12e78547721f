//! Unit tests of `messages`.

use super::*;
use crate::core::ids::{ImageId, Region};

/// The largest job the configuration allows: a 128-character name and a 255-character description.
fn largest_job(n: u32) -> Job {
    let mut job = Job::new(
        ImageId::parse(&format!("ami-{n:017x}")).unwrap(),
        Region::parse("us-east-1").unwrap(),
        Region::parse("ap-southeast-2").unwrap(),
        Some("n".repeat(128)),
        Some(format!("\u{1F600}{}", "d".repeat(254))),
    );
    job.account = Some(crate::core::ids::AccountId::parse("222222222222").unwrap());
    job.deprecation_time = Some("2027-06-01T00:00:00.000Z".into());
    job.source_created = Some("2026-12-01T00:00:00.000Z".into());
    job.rule = Some("r".repeat(64));
    job
}

#[test]
fn continuations_are_packed_by_bytes_and_count_never_over_the_limit() {
    let jobs: Vec<Job> = (0..700).map(largest_job).collect();
    for limit in [DEFAULT_MAX_MESSAGE_BYTES, 65_536, 4_096, SQS_MAX_MESSAGE_BYTES] {
        let (bodies, too_large) = continuation_bodies(&jobs, limit);
        assert!(too_large.is_empty());
        let carried: Vec<usize> = bodies.iter().flat_map(|(ids, _)| ids.clone()).collect();
        assert_eq!(carried, (0..700).collect::<Vec<_>>(), "every job once, in order");
        for (ids, body) in &bodies {
            assert!(body.len() <= limit, "{} > {limit}", body.len());
            assert!(ids.len() <= JOBS_PER_MESSAGE);
            let decoded: Continuation = serde_json::from_str(body).unwrap();
            assert_eq!(decoded.jobs.len(), ids.len());
        }
    }
    // A job that alone can never fit is set apart (the caller dead-letters it), the others still go.
    let (bodies, too_large) = continuation_bodies(&jobs[..3], 300);
    assert_eq!((bodies.len(), too_large), (0, vec![0, 1, 2]));
}

#[test]
fn batches_keep_to_ten_entries_and_the_byte_limit() {
    let sizes = [100_000, 100_000, 100_000, 10, 10, 262_144, 5];
    let ranges = batches(&sizes, 10, DEFAULT_MAX_MESSAGE_BYTES);
    assert_eq!(ranges, vec![0..2, 2..5, 5..6, 6..7]);
    for r in &ranges {
        let total: usize = sizes[r.clone()].iter().sum();
        assert!(total <= DEFAULT_MAX_MESSAGE_BYTES || r.len() == 1, "{r:?}: {total}");
    }
    let small = [10; 25];
    assert_eq!(batches(&small, 10, DEFAULT_MAX_MESSAGE_BYTES), vec![0..10, 10..20, 20..25]);
    assert!(batches(&[], 10, 1).is_empty());
}
