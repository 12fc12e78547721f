//! Unit tests of `policy`.

use super::*;
use crate::core::ids::ImageId;

fn r(s: &str) -> Region {
    Region::parse(s).unwrap()
}

#[test]
fn messages_only_narrow_the_configuration() {
    let regions = [r("eu-west-1"), r("us-west-2")];
    let accounts = [AccountId::parse("222222222222").unwrap()];
    let p = Policy { target_regions: &regions, target_accounts: &accounts, encrypt_copies: true };
    assert!(p.check_targets(None).is_ok());
    assert!(p.check_targets(Some(&[r("eu-west-1")])).is_ok());
    let err = p.check_targets(Some(&[r("eu-west-1"), r("sa-east-1")])).unwrap_err();
    assert!(err.starts_with("target_regions sa-east-1 not in TARGET_REGIONS"), "only the offending region: {err}");
    assert!(p.check_encryption(Some(false)).unwrap_err().contains("ENCRYPT_COPIES"));
    assert!(p.check_encryption(Some(true)).is_ok());

    let mut job = Job::new(ImageId::parse("ami-12345678").unwrap(), r("us-east-1"), r("us-east-1"), None, None);
    assert!(p.check_job(&job).unwrap_err().contains("us-east-1"), "this account never copies to the source region");
    job.account = Some(accounts[0].clone());
    assert!(p.check_job(&job).is_ok(), "a target account does");
    job.account = Some(AccountId::parse("999999999999").unwrap());
    assert!(p.check_job(&job).unwrap_err().contains("TARGET_ACCOUNTS"));
    job.account = None;
    job.destination = r("sa-east-1");
    assert!(p.check_job(&job).unwrap_err().contains("sa-east-1"));
}
