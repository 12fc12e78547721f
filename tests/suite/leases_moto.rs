//! The admission leases' adapter (DynamoDB conditional writes) over the emulator, with the table as template.yaml
//! makes it: of many invocations asking at once, exactly one takes a place's lease; it is given back only by its
//! holder; the next holder learns when it was given back; a lease whose holder stopped is taken over once its time
//! ran out, and then tells no release time (the next holder reads the place again). The place's waiting list lives
//! in the same item: parked by anyone, read by the write that takes the lease, changed by the one that gives it back.

use ami_replicator::aws::leases::AwsLeases;
use ami_replicator::local::{create_admission_table, Emulator};
use ami_replicator::ports::{Lease, Leases, WaitingChanges, WaitingList};
use std::sync::Arc;

const PLACE: &str = "123456789012/eu-west-1";

/// The emulator (kept running by the caller) and the leases adapter over its admission table.
async fn table() -> (Emulator, Arc<AwsLeases>) {
    let emulator = Emulator::start(1.0).unwrap();
    let sdk = emulator.sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = create_admission_table(&ddb, "admission").await.unwrap();
    (emulator, Arc::new(AwsLeases::new(ddb, table)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_invocation_at_a_time_holds_a_places_lease() {
    let (_emulator, leases) = table().await;
    let now = 1_800_000_000.0;

    // Twenty invocations at once: one lease.
    let asks = (0..20).map(|i| {
        let leases = leases.clone();
        tokio::spawn(async move { leases.acquire(PLACE, &format!("inv-{i}"), now, now + 60.0).await.unwrap() })
    });
    let answers: Vec<Lease> = futures::future::join_all(asks).await.into_iter().map(Result::unwrap).collect();
    let taken: Vec<usize> =
        answers.iter().enumerate().filter(|(_, a)| matches!(a, Lease::Taken { .. })).map(|(i, _)| i).collect();
    assert_eq!(taken.len(), 1, "{answers:?}");
    assert_eq!(
        answers[taken[0]],
        Lease::Taken { released_at: None, waiting: WaitingList::default() },
        "never taken before"
    );
    assert!(
        answers.iter().all(|a| matches!(a, Lease::Taken { .. }) || *a == Lease::HeldUntil(now + 60.0)),
        "{answers:?}"
    );
    let holder = format!("inv-{}", taken[0]);

    // Another place is another lease.
    assert_eq!(
        leases.acquire("123456789012/us-west-2", "other", now, now + 60.0).await.unwrap(),
        Lease::Taken { released_at: None, waiting: WaitingList::default() }
    );

    // Only the holder gives it back; then the next one learns when.
    leases.release(PLACE, "not-the-holder", now + 1.0).await.unwrap();
    assert_eq!(leases.acquire(PLACE, "late", now + 2.0, now + 62.0).await.unwrap(), Lease::HeldUntil(now + 60.0));
    leases.release(PLACE, &holder, now + 3.0).await.unwrap();
    assert_eq!(
        leases.acquire(PLACE, "next", now + 4.0, now + 64.0).await.unwrap(),
        Lease::Taken { released_at: Some(now + 3.0), waiting: WaitingList::default() }
    );

    // "next" stops without giving it back: nobody gets it before its time ran out, then it tells no release.
    assert_eq!(leases.acquire(PLACE, "waiting", now + 30.0, now + 90.0).await.unwrap(), Lease::HeldUntil(now + 64.0));
    assert_eq!(
        leases.acquire(PLACE, "waiting", now + 65.0, now + 125.0).await.unwrap(),
        Lease::Taken { released_at: None, waiting: WaitingList::default() }
    );
    // The stopped holder's late release changes nothing.
    leases.release(PLACE, "next", now + 66.0).await.unwrap();
    assert_eq!(leases.acquire(PLACE, "third", now + 67.0, now + 127.0).await.unwrap(), Lease::HeldUntil(now + 125.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_places_waiting_jobs_are_parked_by_anyone_and_read_and_taken_by_the_lease_holder() {
    let (_emulator, leases) = table().await;
    let now = 1_800_000_000.0;
    let entry = |n: usize| (format!("w:us-east-1:ami-{n:017x}"), format!("{n} - -"));

    // 250 jobs parked at once by five invocations (three writes each for 50... one write per 100 entries).
    let parks = (0..5).map(|k| {
        let leases = leases.clone();
        let entries: Vec<(String, String)> = (k * 50..k * 50 + 50).map(entry).collect();
        tokio::spawn(async move { leases.park(PLACE, &entries, now).await.unwrap() })
    });
    for wake in futures::future::join_all(parks).await {
        assert_eq!(wake.unwrap(), None, "no wake-up sent yet");
    }
    leases.set_wake(PLACE, now + 300.0).await.unwrap();
    assert_eq!(leases.park(PLACE, &[entry(250)], now + 1.0).await.unwrap(), Some(now + 300.0));

    // The holder reads them all with the write that takes the lease, and gives it back with its changes.
    let Lease::Taken { waiting, .. } = leases.acquire(PLACE, "holder", now + 2.0, now + 62.0).await.unwrap() else {
        panic!("the lease was free")
    };
    assert_eq!(waiting.entries.len(), 251);
    assert_eq!(waiting.wake_at, Some(now + 300.0));
    // Meanwhile another invocation parks more: the holder's changes keep them.
    leases.park(PLACE, &[entry(300)], now + 3.0).await.unwrap();
    let changes = WaitingChanges {
        park: (400..520).map(entry).collect(),
        unpark: (0..200).map(|n| entry(n).0).collect(),
        wake_at: Some(now + 600.0),
    };
    leases.release_with(PLACE, "holder", now + 4.0, changes).await.unwrap();
    let list = leases.waiting(PLACE).await.unwrap();
    let mut expected: Vec<(String, String)> = (200..251).chain([300]).chain(400..520).map(entry).collect();
    expected.sort();
    assert_eq!(list, WaitingList { entries: expected, wake_at: Some(now + 600.0) });
    // Given back: the next holder learns when, and sees the list.
    match leases.acquire(PLACE, "next", now + 5.0, now + 65.0).await.unwrap() {
        Lease::Taken { released_at, waiting } => {
            assert_eq!(released_at, Some(now + 4.0));
            assert_eq!(waiting.entries.len(), 172);
        }
        other => panic!("{other:?}"),
    }
    // A holder whose time ran out still removes what it took (another holds the lease now).
    let late = WaitingChanges { unpark: (200..251).map(|n| entry(n).0).collect(), ..WaitingChanges::default() };
    leases.release_with(PLACE, "holder", now + 6.0, late).await.unwrap();
    assert_eq!(leases.waiting(PLACE).await.unwrap().entries.len(), 121);
    assert_eq!(leases.acquire(PLACE, "third", now + 7.0, now + 67.0).await.unwrap(), Lease::HeldUntil(now + 65.0));
}
