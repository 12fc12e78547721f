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
    let policy = SharePolicy {
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
    let mut policy = SharePolicy { copy_source_permissions: true, ..Default::default() };
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
    let policy = SharePolicy { copy_source_permissions: false, extra: vec![acct("333333333333")], allow_public: false };
    let d = decide(&[acct("111111111111")], &policy, &owner, &[]);
    assert_eq!(d.grants, vec![acct("333333333333")]);
}
