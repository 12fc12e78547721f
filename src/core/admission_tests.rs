//! Unit tests of `admission`.

use super::*;
use crate::core::ids::{ImageId, Region};

fn job(waits: u32) -> Job {
    sized(waits, 8)
}

fn sized(waits: u32, size_gib: u32) -> Job {
    let mut j = Job::new(
        ImageId::parse("ami-12345678").unwrap(),
        Region::parse("us-east-1").unwrap(),
        Region::parse("eu-west-1").unwrap(),
        None,
        None,
    );
    j.capacity_waits = waits;
    j.size_gib = size_gib;
    j
}

#[test]
fn room_never_underflows() {
    assert_eq!(room(100, 97), 3);
    assert_eq!(room(100, 100), 0);
    assert_eq!(room(100, 130), 0);
}

#[test]
fn longest_waiting_jobs_are_admitted_first() {
    let (start, wait) = admit(vec![(0, job(0)), (1, job(3)), (2, job(1)), (3, job(3))], 2);
    assert_eq!(start.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(wait.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![2, 0]);
    let (start, wait) = admit(vec![(0, job(0))], 0);
    assert!(start.is_empty() && wait.len() == 1);
}

#[test]
fn largest_images_first_unless_a_job_starves() {
    let jobs = vec![(0, sized(0, 8)), (1, sized(0, 500)), (2, sized(STARVING_AFTER_WAITS, 8)), (3, sized(2, 100))];
    let (start, wait) = admit(jobs, 3);
    assert_eq!(start.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![2, 1, 3]);
    assert_eq!(wait[0].0, 0);
}

#[test]
fn the_copy_bucket_is_replayed_from_the_starts_ec2_shows() {
    // Nothing started: a full bucket.
    assert_eq!(copy_tokens(&[], 1_000), 100);
    // 100 copies started in one second: empty; each second after adds one.
    let burst = vec![1_000; 100];
    assert_eq!(copy_tokens(&burst, 1_000), 0);
    assert_eq!(copy_tokens(&burst, 1_030), 30);
    // Long ago: full again, never above the capacity.
    assert_eq!(copy_tokens(&burst, 5_000), 100);
    // 40 starts, then 60 s, then 80 starts in a second: 100 - 40 + 60 = 120 capped at 100, minus 80.
    let mut two = vec![1_000; 40];
    two.extend(vec![1_060; 80]);
    assert_eq!(copy_tokens(&two, 1_060), 20);
    // Order does not matter; a start "in the future" (clock skew) counts as now.
    two.reverse();
    assert_eq!(copy_tokens(&two, 1_060), 20);
    assert_eq!(copy_tokens(&[1_070], 1_060), 99);
}

#[test]
fn admission_spends_one_token_fewer_than_a_partly_spent_bucket_shows() {
    assert_eq!(usable_tokens(100), 100);
    assert_eq!(usable_tokens(30), 29);
    assert_eq!(usable_tokens(0), 0);
}
