//! Unit tests of `waiting`.

use super::*;

fn job(image: &str, size_gib: u32, since: i64) -> Job {
    let mut j = Job::new(
        ImageId::parse(image).unwrap(),
        Region::parse("us-east-1").unwrap(),
        Region::parse("eu-west-1").unwrap(),
        Some("name".into()),
        None,
    );
    j.size_gib = size_gib;
    j.since = Some(since);
    j
}

#[test]
fn an_entry_round_trips_and_names_its_source() {
    let mut j = job("ami-0123456789abcdef0", 200, 1_800_000_000);
    j.encrypt = Some(false);
    let w = Waiting::of(&j);
    assert_eq!(w.key(), "w:us-east-1:ami-0123456789abcdef0");
    assert_eq!(w.value(), "200 1800000000 n");
    assert_eq!(Waiting::parse(&w.key(), &w.value()).unwrap(), w);
    let place = Place::new(None, Region::parse("eu-west-1").unwrap());
    let back = w.to_job(&place);
    assert_eq!(
        (back.source_image, back.size_gib, back.since, back.encrypt),
        (j.source_image, 200, j.since, Some(false))
    );
    // What copying needs is read from the source again, never from the store.
    assert_eq!(back.name, None);
}

#[test]
fn entries_another_writer_made_are_refused_with_why() {
    for (key, value) in [
        ("w:us-east-1:ami-12345678", "12"),
        ("w:us-east-1:ami-12345678", "x - -"),
        ("w:us-east-1:ami-12345678", "1 - maybe"),
        ("w:us-east-1:ami-12345678", "1 - - extra"),
        ("w:nowhere:ami-12345678", "1 - -"),
        ("w:us-east-1:snap-12345678", "1 - -"),
        ("holder", "1 - -"),
    ] {
        let err = Waiting::parse(key, value).unwrap_err();
        assert!(err.contains(key), "{err}");
    }
    let (good, bad) = in_priority_order(&[
        ("w:us-east-1:ami-12345678".into(), "8 - -".into()),
        ("w:us-east-1:ami-1234567x".into(), "8 - -".into()),
    ]);
    assert_eq!((good.len(), bad.len()), (1, 1));
}

#[test]
fn the_longest_of_the_batch_and_the_store_start_first() {
    let batch = vec![(0, job("ami-00000001", 50, 10)), (1, job("ami-00000002", 10, 10))];
    let stored = vec![
        Waiting::of(&job("ami-00000003", 100, 5)),
        Waiting::of(&job("ami-00000004", 30, 5)),
        // The same source as a batch job: the batch's stands for it.
        Waiting::of(&job("ami-00000001", 50, 1)),
    ];
    let choice = choose(batch, stored, 2, 1000);
    assert_eq!(choice.take.iter().map(|w| w.source_image.as_str()).collect::<Vec<_>>(), ["ami-00000003"]);
    assert_eq!(choice.start.iter().map(|(t, _)| *t).collect::<Vec<_>>(), [0]);
    assert_eq!(choice.park.iter().map(|(t, _)| *t).collect::<Vec<_>>(), [1]);
    // No room: the batch parks, nothing is taken.
    let choice =
        choose(vec![(0, job("ami-00000001", 50, 10))], vec![Waiting::of(&job("ami-00000003", 100, 5))], 0, 1000);
    assert_eq!((choice.start.len(), choice.take.len(), choice.park.len()), (0, 0, 1));
}

#[test]
fn equal_sizes_go_oldest_first() {
    let (order, _) = in_priority_order(&[
        (Waiting::of(&job("ami-00000001", 8, 30)).key(), Waiting::of(&job("ami-00000001", 8, 30)).value()),
        (Waiting::of(&job("ami-00000002", 8, 20)).key(), Waiting::of(&job("ami-00000002", 8, 20)).value()),
        (Waiting::of(&job("ami-00000003", 9, 90)).key(), Waiting::of(&job("ami-00000003", 9, 90)).value()),
    ]);
    let ids: Vec<&str> = order.iter().map(|w| w.source_image.as_str()).collect();
    assert_eq!(ids, ["ami-00000003", "ami-00000002", "ami-00000001"]);
}

#[test]
fn one_wake_up_per_place_and_only_while_jobs_wait() {
    assert!(!wake_needed(0, None, 100.0, 300), "nothing waits: the chain ends");
    assert!(wake_needed(3, None, 100.0, 300), "jobs wait and no wake-up is on its way");
    assert!(wake_needed(3, Some(100.5), 100.0, 300), "the wake-up being handled goes on");
    assert!(!wake_needed(3, Some(400.0), 100.0, 300), "another is on its way in time");
    assert!(wake_needed(3, Some(400.0), 100.0, 20), "another comes too late for a gathering job");
    assert_eq!(wake_delay(5, 60, None), WAKE_SAFETY_SECONDS);
    assert_eq!(wake_delay(0, 60, None), 60);
    assert_eq!(wake_delay(0, 0, None), 1);
    assert_eq!(wake_delay(5, 60, Some(12)), 12);
    assert_eq!(gathered_in([Some(90), Some(95), None, Some(10)], 100), Some(10));
    assert_eq!(gathered_in([Some(10)], 100), None);
}

#[test]
fn a_burst_gathers_before_the_longest_start() {
    // Jobs made 5 s ago wait; the older one of the list starts although it is smaller.
    let batch = vec![(0, job("ami-00000001", 200, 995))];
    let stored = vec![Waiting::of(&job("ami-00000002", 10, 900))];
    let choice = choose(batch, stored, 5, 1000);
    assert_eq!((choice.start.len(), choice.take.len(), choice.park.len()), (0, 1, 1));
    assert!(gathering(Some(995), 1000) && !gathering(Some(980), 1000) && !gathering(None, 1000));
    assert!(!gathering(Some(2000), 1000), "a time in the future is not trusted to hold a job");
}

#[test]
fn a_places_polls_fall_on_one_grid() {
    for now in [1_000_000i64, 1_000_017, 1_000_059] {
        let d = poll_on_grid(now, 60, "123456789012/eu-west-1");
        assert!((30..90).contains(&d), "{d}");
        // Every poll of the place lands on the same instants.
        assert_eq!(
            (now + i64::from(d)) % 60,
            (1_000_000 + i64::from(poll_on_grid(1_000_000, 60, "123456789012/eu-west-1"))) % 60
        );
    }
}

#[test]
fn copy_events_of_a_minute_come_together() {
    let at = |now: i64| now + i64::from(next_on_grid(now, 60, "s"));
    assert!((0..60).all(|k| at(1_000_000 + k) == at(1_000_000) || at(1_000_000 + k) == at(1_000_000) + 60));
    assert!((0..60).map(|k| next_on_grid(1_000_000 + k, 60, "s")).all(|d| d < 60));
}
