//! Unit tests of `share`.

use super::*;
use crate::core::ids::OrganizationArn;

fn acct(s: &str) -> LaunchPermission {
    LaunchPermission::Account(AccountId::parse(s).unwrap())
}

#[test]
fn merges_source_and_configured_without_duplicates_or_owner() {
    let owner = AccountId::parse("123456789012").unwrap();
    let org = LaunchPermission::Organization(
        OrganizationArn::parse("arn:aws:organizations::123456789012:organization/o-abc123def4").unwrap(),
    );
    let policy = ShareSettings {
        copy_source_permissions: true,
        extra: vec![acct("222222222222"), acct("123456789012"), org.clone()],
        allow_public: false,
    };
    let d = decide(&[acct("111111111111"), acct("222222222222")], &policy, &owner, &[]);
    assert_eq!(d.grants, vec![acct("111111111111"), acct("222222222222"), org]);
    assert!(!d.public_withheld);
}

#[test]
fn public_needs_explicit_permission() {
    let owner = AccountId::parse("123456789012").unwrap();
    let mut policy = ShareSettings { copy_source_permissions: true, ..Default::default() };
    let d = decide(&[LaunchPermission::Public, acct("111111111111")], &policy, &owner, &[]);
    assert_eq!(d.grants, vec![acct("111111111111")]);
    assert!(d.public_withheld);
    policy.allow_public = true;
    let d = decide(&[LaunchPermission::Public], &policy, &owner, &[]);
    assert_eq!(d.grants, vec![LaunchPermission::Public]);
}

#[test]
fn source_permissions_can_be_ignored() {
    let owner = AccountId::parse("123456789012").unwrap();
    let policy =
        ShareSettings { copy_source_permissions: false, extra: vec![acct("333333333333")], allow_public: false };
    let d = decide(&[acct("111111111111")], &policy, &owner, &[]);
    assert_eq!(d.grants, vec![acct("333333333333")]);
}

#[test]
fn a_copy_is_deprecated_as_its_source_and_at_once_when_that_time_has_passed() {
    let now = crate::core::time::parse_rfc3339("2026-12-07T12:00:30Z").unwrap();
    assert_eq!(deprecation_time("2027-06-01T00:00:00Z", now), "2027-06-01T00:00:00Z", "the source's own");
    // Past (a backfill, or a source that reached it while its copy ran): the first full minute a minute ahead.
    assert_eq!(deprecation_time("2026-01-01T00:00:00Z", now), "2026-12-07T12:02:00.000Z");
    assert_eq!(deprecation_time("2026-12-07T12:01:00Z", now), "2026-12-07T12:02:00.000Z", "too close for EC2");
    assert_eq!(deprecation_time("not a time", now), "not a time", "EC2 says why");
}
