//! Unit tests of `step`.

use super::*;
use crate::core::ids::Region;

fn owner() -> crate::core::ids::AccountId {
    crate::core::ids::AccountId::parse("123456789012").unwrap()
}

fn job() -> Job {
    Job::new(
        ImageId::parse("ami-0123456789abcdef0").unwrap(),
        Region::parse("us-east-1").unwrap(),
        Region::parse("eu-west-1").unwrap(),
        None,
        None,
    )
}

fn copy() -> ImageId {
    ImageId::parse("ami-11111111").unwrap()
}

#[test]
fn available_copies_are_shared_and_pending_ones_polled() {
    let p = JobLimits::default();
    assert_eq!(on_copy_observed(&job(), &copy(), Some(&ImageState::Available), &p), Decision::Share { copy: copy() });
    match on_copy_observed(&job(), &copy(), Some(&ImageState::Pending), &p) {
        Decision::Continue { job, delay_seconds } => {
            assert_eq!(delay_seconds, 60);
            assert_eq!(job.phase, Phase::Wait { copy_image: copy() });
            assert_eq!(job.polls, 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn failed_copies_are_replaced_three_times_then_given_up() {
    let p = JobLimits::default();
    let mut j = job();
    let failed = ImageState::Failed(Some("snapshot error".into()));
    for attempt in 1..3 {
        match on_copy_observed(&j, &copy(), Some(&failed), &p) {
            Decision::Replace { deregister, job } => {
                assert_eq!(deregister, None, "the same failed copy is not deregistered before its successor exists");
                assert_eq!(job.replaces, Some(copy()), "the failed copy is kept until its successor exists");
                assert_eq!(job.failed_copies, attempt);
                assert_eq!(job.phase, Phase::Copy);
                j = job;
            }
            other => panic!("{other:?}"),
        }
    }
    match on_copy_observed(&j, &copy(), Some(&failed), &p) {
        Decision::GiveUp { reason, failed_copy } => {
            assert!(reason.contains("snapshot error") && reason.contains("3 copies failed"), "{reason}");
            assert_eq!(failed_copy, Some(copy()));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_copy_missing_after_polling_was_cancelled() {
    let p = JobLimits::default();
    assert!(matches!(on_copy_observed(&job(), &copy(), None, &p), Decision::Continue { .. }));
    let mut j = job();
    j.polls = 3;
    assert_eq!(on_copy_observed(&j, &copy(), None, &p), Decision::Vanished { copy: copy() });
    // The source tells why: still there -> someone cancelled the copy; gone -> replication of it stopped.
    let available = ImageState::Available;
    let gone = after_vanished(&j, &copy(), &[], Some(&available), &owner(), &p);
    assert!(matches!(gone, Decision::GiveUp { reason, failed_copy: None } if reason.contains("cancelled")));
    let deregistered = ImageState::Other("deregistered".into());
    let stopped = after_vanished(&j, &copy(), &[], Some(&deregistered), &owner(), &p);
    assert!(matches!(stopped, Decision::Stop { reason } if reason.contains("deregistered")));
    assert!(matches!(after_vanished(&j, &copy(), &[], None, &owner(), &p), Decision::Stop { .. }));
    // A duplicate job replaced the failed copy: follow the replacement.
    let mut replacement = crate::core::image::ImageInfo {
        id: ImageId::parse("ami-22222222").unwrap(),
        owner: Some(owner()),
        name: None,
        description: None,
        state: ImageState::Pending,
        tags: crate::core::provenance::provenance_tags(&j.source_image, &j.source_region),
        origin: crate::core::image::Origin::as_tagged(&crate::core::provenance::provenance_tags(
            &j.source_image,
            &j.source_region,
        )),
        last_launched: None,
        size_gib: 1,
        traits: Default::default(),
        snapshots: vec![],
        created: None,
    };
    match after_vanished(&j, &copy(), std::slice::from_ref(&replacement), Some(&available), &owner(), &p) {
        Decision::Continue { job, .. } => assert_eq!(job.phase, Phase::Wait { copy_image: replacement.id.clone() }),
        other => panic!("{other:?}"),
    }
    // Only a failed copy of the chain: another job replaces it (or gave up); this duplicate stops.
    replacement.state = ImageState::Failed(None);
    let duplicate = after_vanished(&j, &copy(), std::slice::from_ref(&replacement), Some(&available), &owner(), &p);
    assert!(matches!(duplicate, Decision::Stop { reason } if reason.contains("another job")));
}

#[test]
fn errors_by_class() {
    let p = JobLimits::default();
    let perm = PortError::from_code("InvalidAMIID.NotFound", "gone");
    assert!(
        matches!(on_error(&job(), &perm, &p), Decision::GiveUp { reason, .. } if reason.contains("InvalidAMIID.NotFound"))
    );
    let cap = PortError::from_code("ResourceLimitExceeded", "too many");
    let mut j = job();
    j.retries = 100;
    match on_error(&j, &cap, &p) {
        Decision::Continue { job, delay_seconds } => {
            assert_eq!(job.capacity_waits, 1);
            assert_eq!(job.retries, 100, "capacity waits are not failures");
            assert!((7..=15).contains(&delay_seconds), "{delay_seconds}");
            let mut j = job;
            for _ in 0..10 {
                j.capacity_waits += 1;
            }
            match wait_for_capacity(&j, &p) {
                Decision::Continue { delay_seconds, .. } => assert_eq!(delay_seconds, 60),
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
    let transient = PortError::from_code("InternalError", "oops");
    let mut j = job();
    for n in 1..=p.max_retries {
        match on_error(&j, &transient, &p) {
            Decision::Continue { job, .. } => {
                assert_eq!(job.retries, n);
                j = job;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(on_error(&j, &transient, &p), Decision::GiveUp { .. }));
}

#[test]
fn requests_back_off_on_throttling_and_give_up_on_permanent_errors() {
    let p = JobLimits::default();
    let mut request = ReplicationRequest::new(
        ImageId::parse("ami-0123456789abcdef0").unwrap(),
        Region::parse("us-east-1").unwrap(),
        None,
    );
    let throttled = PortError::from_code("RequestLimitExceeded", "slow down");
    for _ in 0..20 {
        match on_request_error(&request, &throttled, &p) {
            RequestDecision::Resend { request: next, delay_seconds } => {
                assert!(delay_seconds >= 2);
                request = next;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(request.retries, 20);
    let transient = PortError::from_code("InternalError", "oops");
    assert!(matches!(on_request_error(&request, &transient, &p), RequestDecision::GiveUp { .. }));
    let gone = PortError::from_code("InvalidAMIID.Malformed", "bad");
    request.retries = 0;
    assert!(
        matches!(on_request_error(&request, &gone, &p), RequestDecision::GiveUp { reason } if reason.contains("Malformed"))
    );
}

#[test]
fn regions_with_few_copies_are_polled_less_often() {
    let p = JobLimits::default();
    assert_eq!(poll_seconds_for(&p, POLL_FULL_BATCH), 60);
    assert_eq!(poll_seconds_for(&p, 500), 60);
    assert_eq!(poll_seconds_for(&p, 0), 120);
    let one = poll_seconds_for(&p, 1);
    assert!(one > 110 && one < 120, "{one}");
    let zero = JobLimits { poll_seconds: 0, ..JobLimits::default() };
    assert_eq!(poll_seconds_for(&zero, 1), 0, "tests may poll at once");
    let long = JobLimits { poll_seconds: 900, ..JobLimits::default() };
    assert_eq!(poll_seconds_for(&long, 1), MAX_DELAY_SECONDS);
    // The safety net of copy events (300 s) is put off by a minute at most.
    let net = JobLimits { poll_seconds: 300, ..JobLimits::default() };
    assert_eq!((poll_seconds_for(&net, 0), poll_seconds_for(&net, POLL_FULL_BATCH)), (360, 300));
}

#[test]
fn throttling_slows_down_but_never_gives_up() {
    let p = JobLimits::default();
    let throttled = PortError::from_code("RequestLimitExceeded", "slow down");
    let mut j = job();
    let mut last = 0;
    for n in 1..=40 {
        match on_error(&j, &throttled, &p) {
            Decision::Continue { job, delay_seconds } => {
                assert_eq!((job.throttles, job.retries), (n, 0));
                assert!(delay_seconds <= MAX_DELAY_SECONDS);
                last = delay_seconds;
                j = job;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(last >= MAX_DELAY_SECONDS / 2, "{last}");
    match on_copy_observed(&j, &copy(), Some(&ImageState::Pending), &p) {
        Decision::Continue { job, .. } => assert_eq!(job.throttles, 0, "progress resets the count"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn backoff_grows_is_capped_and_jittered() {
    let d1 = backoff_seconds(5, 1, "a");
    assert!((2..=5).contains(&d1), "{d1}");
    let d5 = backoff_seconds(5, 5, "a");
    assert!((40..=80).contains(&d5), "{d5}");
    assert!(backoff_seconds(5, 30, "a") <= MAX_DELAY_SECONDS);
    let spread: std::collections::HashSet<u32> = (0..50).map(|i| backoff_seconds(60, 4, &i.to_string())).collect();
    assert!(spread.len() > 10, "jitter spreads retries: {spread:?}");
}

#[test]
fn counters_carried_in_messages_saturate_instead_of_wrapping() {
    // Issue 28: a message may carry any u32; release builds would wrap `+= 1` to 0 and retry forever.
    let p = JobLimits::default();
    let mut j = job();
    j.retries = u32::MAX;
    let err = PortError::transient("InternalError", "x");
    assert!(matches!(on_error(&j, &err, &p), Decision::GiveUp { .. }), "at the ceiling: still over max_retries");
    j.throttles = u32::MAX;
    match on_error(&j, &PortError::from_code("RequestLimitExceeded", "x"), &p) {
        Decision::Continue { job, delay_seconds } => {
            assert_eq!(job.throttles, u32::MAX);
            assert!(delay_seconds <= MAX_DELAY_SECONDS);
        }
        other => panic!("{other:?}"),
    }
    j.capacity_waits = u32::MAX;
    match wait_for_capacity(&j, &p) {
        Decision::Continue { job, .. } => assert_eq!(job.capacity_waits, u32::MAX),
        other => panic!("{other:?}"),
    }
    j.polls = u32::MAX;
    j.failed_copies = u32::MAX;
    assert!(matches!(on_copy_observed(&j, &copy(), Some(&ImageState::Pending), &p), Decision::Continue { .. }));
    let failed = on_copy_observed(&j, &copy(), Some(&ImageState::Failed(None)), &p);
    assert!(matches!(failed, Decision::GiveUp { .. }), "{failed:?}");
}

#[test]
fn a_pending_sources_request_ends_at_the_job_age_limit() {
    let p = JobLimits { poll_seconds: 60, ..JobLimits::default() };
    let request = ReplicationRequest::new(
        ImageId::parse("ami-0123456789abcdef0").unwrap(),
        crate::core::ids::Region::parse("us-east-1").unwrap(),
        None,
    );
    let now = crate::core::time::parse_rfc3339("2026-12-07T12:00:00Z").unwrap();
    let day = 86_400;
    match on_source_pending(&request, Some("2026-12-07T11:00:00Z"), now, day, &p) {
        RequestDecision::Resend { request, delay_seconds } => assert_eq!((request.retries, delay_seconds), (1, 60)),
        other => panic!("{other:?}"),
    }
    let stale = on_source_pending(&request, Some("2026-12-05T11:00:00Z"), now, day, &p);
    assert!(matches!(&stale, RequestDecision::GiveUp { reason } if reason.contains("JOB_MAX_AGE_HOURS")), "{stale:?}");
    // Without a creation date, the request's own count of looks bounds it (and saturates).
    let mut counted = request.clone();
    counted.retries = u32::MAX;
    assert!(matches!(on_source_pending(&counted, None, now, day, &p), RequestDecision::GiveUp { .. }));
}
