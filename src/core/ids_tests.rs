//! Unit tests of `ids`.

use super::*;

#[test]
fn image_ids() {
    assert!(ImageId::parse("ami-0123456789abcdef0").is_ok());
    assert!(ImageId::parse("ami-12c6146b").is_ok());
    for bad in ["ami-123", "ami-0123456789ABCDEF0", "snap-0123456789abcdef0", "", "ami-0123456789abcdefg"] {
        assert!(ImageId::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn regions_are_checked_against_the_known_list() {
    assert!(Region::parse("eu-west-1").is_ok());
    let err = Region::parse("eu-west-9").unwrap_err();
    assert!(err.to_string().contains("eu-west-9"), "{err}");
}

#[test]
fn accounts_and_function_arns() {
    assert!(AccountId::parse("123456789012").is_ok());
    assert!(AccountId::parse("12345678901").is_err());
    assert!(AccountId::parse("12345678901a").is_err());
    let arn = "arn:aws:lambda:us-east-1:210987654321:function:ami-replicator:live";
    assert_eq!(AccountId::from_function_arn(arn).unwrap().as_str(), "210987654321");
    assert!(AccountId::from_function_arn("").is_err());
}

#[test]
fn organization_arns() {
    assert!(OrganizationArn::parse("arn:aws:organizations::123456789012:organization/o-abc123def4").is_ok());
    assert!(OrganizationArn::parse("arn:aws:organizations::123456789012:organization/abc").is_err());
    assert!(OrganizationArn::parse("arn:aws:iam::123456789012:organization/o-abc123def4").is_err());
    assert!(OuArn::parse("arn:aws:organizations::123456789012:ou/o-abc123def4/ou-ab12-cd34ef56").is_ok());
    assert!(OuArn::parse("arn:aws:organizations::123456789012:ou/o-abc123def4/ou-ab12").is_err());
}

#[test]
fn serde_validates() {
    let ok: Result<ImageId, _> = serde_json::from_str("\"ami-12c6146b\"");
    assert!(ok.is_ok());
    let bad: Result<ImageId, _> = serde_json::from_str("\"ami-nothex!\"");
    assert!(bad.is_err());
}
