//! The admission leases' adapter (DynamoDB conditional writes) over the emulator, with the table as template.yaml
//! makes it: of many invocations asking at once, exactly one takes a place's lease; it is given back only by its
//! holder; the next holder learns when it was given back; a lease whose holder stopped is taken over once its time
//! ran out, and then tells no release time (the next holder reads the place again).

use ami_replicator::aws::leases::AwsLeases;
use ami_replicator::local::{create_admission_table, Emulator};
use ami_replicator::ports::{Lease, Leases};
use std::sync::Arc;

const PLACE: &str = "123456789012/eu-west-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_invocation_at_a_time_holds_a_places_lease() {
    let emulator = Emulator::start(1.0).unwrap();
    let sdk = emulator.sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = create_admission_table(&ddb, "admission").await.unwrap();
    let leases = Arc::new(AwsLeases::new(ddb.clone(), table));
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
    assert_eq!(answers[taken[0]], Lease::Taken { released_at: None }, "never taken before");
    assert!(
        answers.iter().all(|a| matches!(a, Lease::Taken { .. }) || *a == Lease::HeldUntil(now + 60.0)),
        "{answers:?}"
    );
    let holder = format!("inv-{}", taken[0]);

    // Another place is another lease.
    assert_eq!(
        leases.acquire("123456789012/us-west-2", "other", now, now + 60.0).await.unwrap(),
        Lease::Taken { released_at: None }
    );

    // Only the holder gives it back; then the next one learns when.
    leases.release(PLACE, "not-the-holder", now + 1.0).await.unwrap();
    assert_eq!(leases.acquire(PLACE, "late", now + 2.0, now + 62.0).await.unwrap(), Lease::HeldUntil(now + 60.0));
    leases.release(PLACE, &holder, now + 3.0).await.unwrap();
    assert_eq!(
        leases.acquire(PLACE, "next", now + 4.0, now + 64.0).await.unwrap(),
        Lease::Taken { released_at: Some(now + 3.0) }
    );

    // "next" stops without giving it back: nobody gets it before its time ran out, then it tells no release.
    assert_eq!(leases.acquire(PLACE, "waiting", now + 30.0, now + 90.0).await.unwrap(), Lease::HeldUntil(now + 64.0));
    assert_eq!(
        leases.acquire(PLACE, "waiting", now + 65.0, now + 125.0).await.unwrap(),
        Lease::Taken { released_at: None }
    );
    // The stopped holder's late release changes nothing.
    leases.release(PLACE, "next", now + 66.0).await.unwrap();
    assert_eq!(leases.acquire(PLACE, "third", now + 67.0, now + 127.0).await.unwrap(), Lease::HeldUntil(now + 125.0));
}
