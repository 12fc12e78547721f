//! Unit tests of `job`.

use super::*;

#[test]
fn continuation_round_trips_with_its_phase() {
    let mut job = Job::new(
        ImageId::parse("ami-0123456789abcdef0").unwrap(),
        Region::parse("us-east-1").unwrap(),
        Region::parse("eu-west-1").unwrap(),
        Some("golden".into()),
        None,
    );
    job.phase = Phase::Wait { copy_image: ImageId::parse("ami-11111111").unwrap() };
    job.polls = 2;
    let body = Continuation::body(std::slice::from_ref(&job));
    assert!(body.contains("\"ami_replicator\":1"), "{body}");
    assert!(body.contains("\"phase\":\"wait\""), "{body}");
    let back: Continuation = serde_json::from_str(&body).unwrap();
    assert_eq!(back.jobs, vec![job]);
}
