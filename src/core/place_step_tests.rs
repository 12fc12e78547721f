//! Unit tests of the pure place step: no ports, only observations in and decisions out.

use super::*;
use crate::core::ids::Region;
use crate::core::image::Tag;
use crate::core::provenance::provenance_tags;

fn id(n: u32) -> ImageId {
    ImageId::parse(&format!("ami-{n:08x}")).unwrap()
}

fn job(source: u32, size: u32) -> Job {
    let mut j =
        Job::new(id(source), Region::parse("us-east-1").unwrap(), Region::parse("eu-west-1").unwrap(), None, None);
    j.size_gib = size;
    j
}

fn waiting(source: u32, copy: u32) -> Job {
    let mut j = job(source, 8);
    j.phase = Phase::Wait { copy_image: id(copy) };
    j.polls = 1;
    j
}

fn image(n: u32, state: ImageState, tags: Vec<Tag>) -> ImageInfo {
    ImageInfo::fixture(id(n), state, tags)
}

fn copy_of(n: u32, source: u32, state: ImageState) -> ImageInfo {
    image(n, state, provenance_tags(&id(source), &Region::parse("us-east-1").unwrap()))
}

fn owner() -> AccountId {
    AccountId::parse("123456789012").unwrap()
}

fn observed(pending: Option<Vec<ImageInfo>>, existing: Vec<ImageInfo>, described: Vec<ImageInfo>) -> Observations {
    Observations {
        pending: pending.map(Ok),
        existing: Ok(existing),
        described: Ok(described),
        others: None,
        sources: Default::default(),
        following: Default::default(),
        // Long after any copy of these tests was started: the request bucket is full.
        now_seconds: 4_000_000_000,
    }
}

#[test]
fn split_tells_what_to_observe() {
    let jobs = PlaceJobs::split(vec![(0, job(1, 8)), (1, waiting(2, 20)), (2, job(1, 8)), (3, waiting(3, 30))]);
    assert_eq!((jobs.waiting.len(), jobs.to_copy.len()), (2, 2));
    assert!(jobs.needs_in_flight());
    assert_eq!(jobs.sources(), vec![id(1)], "one lookup per source");
    let pending = [copy_of(20, 2, ImageState::Pending)];
    assert_eq!(jobs.copies_to_describe(Some(&pending)), vec![id(30)], "pending copies need no second look");
    assert_eq!(jobs.copies_to_describe(None), vec![id(20), id(30)]);
    let only_waiting = PlaceJobs::split(vec![(0, waiting(2, 20))]);
    assert!(!only_waiting.needs_in_flight(), "no copy to start: no in-flight count");
}

#[test]
fn admission_fills_the_room_largest_first_and_the_rest_wait() {
    let jobs = PlaceJobs::split(vec![(0, job(1, 8)), (1, job(2, 200)), (2, job(3, 50))]);
    let pending: Vec<ImageInfo> = (100..198).map(|n| image(n, ImageState::Pending, vec![])).collect();
    let mut plan = decide(jobs, observed(Some(pending), vec![], vec![]), 100, &JobLimits::default(), &owner());
    assert_eq!(plan.in_flight, 98);
    assert_eq!(plan.refused.iter().map(|(t, _)| *t).collect::<Vec<_>>(), [0], "not decided: parked or sent back");
    plan.wait_on_queue();
    let started: Vec<u32> = plan.start.iter().map(|(t, _)| *t).collect();
    assert_eq!(started, vec![1, 2], "two slots, the largest images first");
    assert_eq!(plan.waiting_for_capacity, 1);
    assert!(matches!(&plan.decided[0], (0, _, Decision::Continue { job, .. }) if job.capacity_waits == 1));
}

#[test]
fn existing_copies_are_resumed_not_copied_again() {
    let jobs = PlaceJobs::split(vec![(0, job(1, 8)), (1, job(2, 8))]);
    let existing = vec![copy_of(50, 1, ImageState::Available), copy_of(51, 2, ImageState::Failed(None))];
    let plan = decide(jobs, observed(Some(vec![]), existing, vec![]), 100, &JobLimits::default(), &owner());
    assert!(matches!(&plan.decided[..], [(0, _, Decision::Share { copy })] if *copy == id(50)));
    assert_eq!(plan.start.len(), 1, "a failed copy is not resumed: a new one starts");
    assert_eq!(plan.start[0].0, 1);
}

#[test]
fn waiting_copies_settle_from_the_pending_list_and_the_lookup() {
    let jobs = PlaceJobs::split(vec![(0, waiting(1, 20)), (1, waiting(2, 21)), (2, waiting(3, 22))]);
    let described = vec![copy_of(21, 2, ImageState::Available)];
    let plan = decide(
        jobs,
        observed(Some(vec![copy_of(20, 1, ImageState::Pending)]), vec![], described),
        100,
        &JobLimits::default(),
        &owner(),
    );
    assert!(matches!(&plan.decided[0], (0, _, Decision::Continue { .. })), "still pending");
    assert!(matches!(&plan.decided[1], (1, _, Decision::Share { copy }) if *copy == id(21)));
    assert!(
        matches!(&plan.decided[2], (2, _, Decision::Continue { job, .. }) if job.phase == Phase::Wait { copy_image: id(22) }),
        "a copy that is gone, not looked up yet: looked at again"
    );
}

#[test]
fn a_failed_in_flight_count_retries_every_job_and_starts_nothing() {
    let jobs = PlaceJobs::split(vec![(0, job(1, 8)), (1, waiting(2, 20))]);
    let throttled = PortError::from_code("RequestLimitExceeded", "slow down");
    let obs = Observations { pending: Some(Err(throttled)), ..observed(None, vec![], vec![]) };
    let plan = decide(jobs, obs, 100, &JobLimits::default(), &owner());
    assert!(plan.start.is_empty());
    assert_eq!(plan.decided.len(), 2);
    assert!(plan.decided.iter().all(|(_, _, d)| matches!(d, Decision::Continue { job, .. } if job.throttles == 1)));
}

#[test]
fn few_copies_are_polled_less_often() {
    let jobs = PlaceJobs::split(vec![(0, waiting(1, 20))]);
    let plan = decide(jobs, observed(None, vec![], vec![]), 100, &JobLimits::default(), &owner());
    assert!(plan.policy.poll_seconds > 60, "{}", plan.policy.poll_seconds);
}

#[test]
fn copy_answers_map_to_decisions() {
    let p = JobLimits::default();
    let j = job(1, 8);
    assert!(
        matches!(after_copy(&j, &Ok(id(9)), &p), Decision::Continue { job, .. } if job.phase == Phase::Wait { copy_image: id(9) })
    );
    let limit = PortError::from_code("ResourceLimitExceeded", "too many");
    assert!(
        matches!(after_copy(&j, &Err(limit), &p), Decision::Continue { job, .. } if job.capacity_waits == 1 && job.retries == 0)
    );
    let denied = PortError::from_code("InvalidAMIID.NotFound", "gone");
    assert!(
        matches!(after_copy(&j, &Err(denied), &p), Decision::GiveUp { reason, .. } if reason.contains("deregistered"))
    );
    let flaky = PortError::from_code("InternalError", "oops");
    assert!(matches!(after_copy(&j, &Err(flaky), &p), Decision::Continue { job, .. } if job.retries == 1));
}

#[test]
fn at_a_full_place_polls_and_waiters_come_back_together() {
    // Limit 1, one copy pending (id 20): the new job waits for room, and the poll of the pending copy is
    // brought forward to the capacity delay, so both travel in one message and a finished copy frees its slot
    // for the waiter in the same step.
    let policy = JobLimits { poll_seconds: 300, capacity_max_seconds: 60, ..JobLimits::default() };
    let jobs = PlaceJobs::split(vec![(0, waiting(2, 20)), (1, job(1, 8))]);
    let mut plan =
        decide(jobs, observed(Some(vec![copy_of(20, 2, ImageState::Pending)]), vec![], vec![]), 1, &policy, &owner());
    assert_eq!(plan.waiting_for_capacity, 1);
    plan.wait_on_queue();
    let delays: Vec<u32> = plan
        .decided
        .iter()
        .map(|(_, _, d)| match d {
            Decision::Continue { delay_seconds, .. } => *delay_seconds,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(delays, vec![60, 60]);
    // With room, the poll keeps its own (longer) delay.
    let jobs = PlaceJobs::split(vec![(0, waiting(2, 20))]);
    let plan = decide(jobs, observed(None, vec![], vec![copy_of(20, 2, ImageState::Pending)]), 1, &policy, &owner());
    assert!(matches!(plan.decided[0].2, Decision::Continue { delay_seconds, .. } if delay_seconds >= 300));
}

#[test]
fn an_image_id_in_a_message_is_only_a_hint() {
    // Waiting for 20, which is another source's copy; 21, an image that is nobody's copy; 22 is genuine but the
    // job says it replaces 23, an untagged image, and 24, a copy of its source that is not failed.
    let mut fake_replaces = waiting(3, 22);
    fake_replaces.replaces = Some(id(23));
    let mut live_replaces = waiting(3, 22);
    live_replaces.replaces = Some(id(24));
    let jobs = PlaceJobs::split(vec![(0, waiting(1, 20)), (1, waiting(2, 21)), (2, fake_replaces), (3, live_replaces)]);
    let described = vec![
        copy_of(20, 9, ImageState::Available),
        image(21, ImageState::Available, vec![]),
        copy_of(22, 3, ImageState::Available),
        image(23, ImageState::Failed(None), vec![]),
        copy_of(24, 3, ImageState::Available),
    ];
    let plan = decide(jobs, observed(None, vec![], described), 100, &JobLimits::default(), &owner());
    for n in [0, 1] {
        assert!(
            matches!(&plan.decided[n], (_, _, Decision::Continue { job, delay_seconds: 0 }) if job.phase == Phase::Copy),
            "a copy that is not this source's is never shared: the job looks its copy up by provenance: {:?}",
            plan.decided[n]
        );
    }
    for n in [2, 3] {
        let (_, job, decision) = &plan.decided[n];
        assert!(matches!(decision, Decision::Share { copy } if *copy == id(22)));
        assert_eq!(job.replaces, None, "a replaced copy EC2 does not show as this source's failed copy is kept");
    }
    let hinted: Vec<ImageId> = plan.rejected_hints.iter().map(|(i, _)| i.clone()).collect();
    let hinted: std::collections::BTreeSet<ImageId> = hinted.into_iter().collect();
    assert_eq!(hinted, [id(20), id(21), id(23), id(24)].into_iter().collect());
    assert_eq!(plan.rejected_hints.len(), 4);
    // Another account's image with the right tags is not this place's copy either.
    let mut foreign = copy_of(25, 1, ImageState::Available);
    foreign.owner = Some(AccountId::parse("999999999999").unwrap());
    let jobs = PlaceJobs::split(vec![(0, waiting(1, 25))]);
    let plan = decide(jobs, observed(None, vec![], vec![foreign]), 100, &JobLimits::default(), &owner());
    assert!(matches!(&plan.decided[0], (_, _, Decision::Continue { job, .. }) if job.phase == Phase::Copy));
}

#[test]
fn the_attempt_and_the_copy_a_successor_replaces_are_read_from_ec2() {
    // A message claims two failed copies and names a copy to replace; EC2 shows one failed copy (attempt 1).
    let mut claimed = job(1, 8);
    claimed.failed_copies = 2;
    claimed.replaces = Some(id(77));
    let mut failed = copy_of(40, 1, ImageState::Failed(None));
    failed.tags.push(Tag::new(crate::core::provenance::ATTEMPT_TAG, "1"));
    let jobs = PlaceJobs::split(vec![(0, claimed)]);
    let plan = decide(jobs, observed(Some(vec![]), vec![failed.clone()], vec![]), 100, &JobLimits::default(), &owner());
    let (_, started) = &plan.start[0];
    assert_eq!((started.failed_copies, started.replaces.clone()), (2, Some(id(40))));
    // Without any failed copy in EC2, the first attempt, replacing nothing.
    let mut claimed = job(1, 8);
    claimed.failed_copies = 2;
    claimed.replaces = Some(id(77));
    let plan = decide(
        PlaceJobs::split(vec![(0, claimed)]),
        observed(Some(vec![]), vec![], vec![]),
        100,
        &JobLimits::default(),
        &owner(),
    );
    assert_eq!((plan.start[0].1.failed_copies, plan.start[0].1.replaces.clone()), (0, None));
    // Three attempts failed in EC2 (the last one kept): give up, whatever the message says.
    failed.tags.retain(|t| t.key != crate::core::provenance::ATTEMPT_TAG);
    failed.tags.push(Tag::new(crate::core::provenance::ATTEMPT_TAG, "2"));
    let plan = decide(
        PlaceJobs::split(vec![(0, job(1, 8))]),
        observed(Some(vec![]), vec![failed], vec![]),
        100,
        &JobLimits::default(),
        &owner(),
    );
    assert!(matches!(&plan.decided[0], (_, _, Decision::GiveUp { failed_copy: Some(c), .. }) if *c == id(40)));
}

#[test]
fn a_copy_that_vanished_is_decided_from_the_sources_copies_and_its_state() {
    let jobs = PlaceJobs::split(vec![(0, waiting(1, 20)), (1, waiting(2, 21)), (2, waiting(3, 22))]);
    assert_eq!(jobs.vanished_sources(Some(&[]), &[]), vec![id(1), id(2), id(3)]);
    let east = Region::parse("us-east-1").unwrap();
    let mut obs = observed(Some(vec![]), vec![], vec![]);
    // Source 1: a duplicate job's successor is pending (wait for it); source 2: nothing left and the source is
    // there (someone cancelled the copy); source 3: the source is gone (its replication stopped).
    obs.others = Some(Ok(vec![copy_of(30, 1, ImageState::Pending)]));
    obs.sources.insert((id(1), east.clone()), ImageState::Available);
    obs.sources.insert((id(2), east.clone()), ImageState::Available);
    let plan = decide(jobs, obs, 100, &JobLimits::default(), &owner());
    assert!(
        matches!(&plan.decided[0].2, Decision::Continue { job, .. } if job.phase == Phase::Wait { copy_image: id(30) })
    );
    assert!(matches!(&plan.decided[1].2, Decision::GiveUp { reason, .. } if reason.contains("cancelled")));
    assert!(matches!(&plan.decided[2].2, Decision::Stop { reason } if reason.contains("deregistered")));
}

#[test]
fn admission_stops_where_the_copy_request_bucket_runs_dry() {
    // 100 copies started at T (a burst): at T+10 the bucket has 10 tokens, so 10 of 50 start though the limit
    // (300) has room for all; the rest wait.
    let t = 1_800_000_000;
    let pending: Vec<ImageInfo> = (0..100)
        .map(|n| ImageInfo {
            created: Some(crate::core::time::format_rfc3339(t)),
            ..copy_of(1000 + n, 1, ImageState::Pending)
        })
        .collect();
    let jobs = PlaceJobs::split((0..50).map(|n| (n, job(100 + n as u32, 8))).collect());
    let obs = Observations { now_seconds: t + 10, ..observed(Some(pending), vec![], vec![]) };
    let plan = decide(jobs, obs, 300, &JobLimits::default(), &owner());
    assert_eq!((plan.in_flight, plan.copy_tokens, plan.start.len(), plan.waiting_for_capacity), (100, 10, 9, 41));
}

#[test]
fn a_second_look_under_the_lease_takes_back_what_no_longer_fits() {
    let t = 1_800_000_000;
    let created = |n: u32| ImageInfo {
        created: Some(crate::core::time::format_rfc3339(t - 600)),
        ..copy_of(n, 1, ImageState::Pending)
    };
    let jobs = PlaceJobs::split(vec![(0, job(1, 8)), (1, job(2, 200)), (2, job(3, 50))]);
    let pending: Vec<ImageInfo> = (100..197).map(created).collect();
    let obs = Observations { now_seconds: t, ..observed(Some(pending), vec![], vec![]) };
    let mut plan = decide(jobs, obs, 100, &JobLimits::default(), &owner());
    assert_eq!(plan.start.len(), 3);
    // Another invocation started two copies meanwhile: one slot is left, for the largest image.
    let fresh: Vec<ImageInfo> = (100..199).map(created).collect();
    plan.readmit(&fresh, 100, t);
    plan.wait_on_queue();
    let started: Vec<u32> = plan.start.iter().map(|(t, _)| *t).collect();
    assert_eq!((started, plan.in_flight, plan.waiting_for_capacity), (vec![1], 99, 2));
    assert!(plan
        .decided
        .iter()
        .all(|(_, _, d)| matches!(d, Decision::Continue { job, .. } if job.capacity_waits == 1)));
    plan.hold_starts(|job| Decision::Continue { job: job.clone(), delay_seconds: 5 });
    assert!(plan.start.is_empty() && plan.decided.len() == 3);
}
