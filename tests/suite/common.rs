//! Helpers shared by the integration tests.
#![allow(dead_code)]

use ami_replicator::core::ids::{AccountId, Region};
pub use ami_replicator::core::replication_rules::RuleSettings;

pub fn r(s: &str) -> Region {
    Region::parse(s).unwrap()
}

pub fn acct(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}

/// An "EC2 AMI State Change" event of account 123456789012 as EventBridge delivers it, as a message body.
pub fn ami_event(image: &str, region: &str, state: &str) -> String {
    ami_event_of("123456789012", image, region, state)
}

/// An "EC2 AMI State Change" event of `account` (the account where the image changed state).
pub fn ami_event_of(account: &str, image: &str, region: &str, state: &str) -> String {
    serde_json::json!({
        "version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602", "detail-type": "EC2 AMI State Change",
        "source": "aws.ec2", "account": account, "time": "2026-11-29T10:00:00Z", "region": region,
        "resources": [format!("arn:aws:ec2:{region}::image/{image}")],
        "detail": {"RequestId": "d9f1c0d6", "ImageId": image, "State": state, "ErrorMessage": ""}
    })
    .to_string()
}
