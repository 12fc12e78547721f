//! Validated identifiers. Everything the core handles has been checked once, at the edge.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {what}: {rule}")]
pub struct InvalidId {
    pub what: &'static str,
    pub value: String,
    pub rule: &'static str,
}

fn invalid(what: &'static str, value: &str, rule: &'static str) -> InvalidId {
    InvalidId { what, value: value.to_string(), rule }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::parse(s)
            }
        }
        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, InvalidId> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
    };
}

/// An AMI id: `ami-` followed by 8 or 17 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageId(String);
string_newtype!(ImageId);

impl ImageId {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        match s.strip_prefix("ami-") {
            Some(hex) if (hex.len() == 8 || hex.len() == 17) && is_lower_hex(hex) => Ok(Self(s.to_string())),
            _ => Err(invalid("image id", s, "expected ami- and 8 or 17 lower-case hex digits")),
        }
    }
}

/// An EBS snapshot id: `snap-` followed by 8 or 17 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SnapshotId(String);
string_newtype!(SnapshotId);

impl SnapshotId {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        match s.strip_prefix("snap-") {
            Some(hex) if (hex.len() == 8 || hex.len() == 17) && is_lower_hex(hex) => Ok(Self(s.to_string())),
            _ => Err(invalid("snapshot id", s, "expected snap- and 8 or 17 lower-case hex digits")),
        }
    }
}

/// Regions this product knows. A name outside this list is a configuration error, not a runtime surprise.
pub const KNOWN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
];

/// Regions that are disabled until an account enables them (opt-in regions). EC2 calls in such a region that
/// the account has not enabled fail (`OptInRequired`, or an authentication failure: the credentials are not
/// valid there).
pub const OPT_IN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-west-1",
    "eu-central-2",
    "eu-south-1",
    "eu-south-2",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
];

/// An AWS region from [`KNOWN_REGIONS`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);
string_newtype!(Region);

impl Region {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        if KNOWN_REGIONS.contains(&s) {
            Ok(Self(s.to_string()))
        } else {
            Err(invalid("region", s, "not a known AWS region name (e.g. eu-west-1)"))
        }
    }

    /// Whether accounts must enable this region before using it.
    pub fn is_opt_in(&self) -> bool {
        OPT_IN_REGIONS.contains(&self.0.as_str())
    }
}

/// A 12-digit AWS account id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);
string_newtype!(AccountId);

impl AccountId {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_string()))
        } else {
            Err(invalid("account id", s, "expected exactly 12 digits"))
        }
    }

    /// The account of a Lambda function ARN (`arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`).
    pub fn from_function_arn(arn: &str) -> Result<Self, InvalidId> {
        let mut parts = arn.split(':');
        match (parts.next(), parts.nth(3)) {
            (Some("arn"), Some(account)) => Self::parse(account),
            _ => Err(invalid("function ARN", arn, "expected arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME")),
        }
    }
}

fn is_org_id(s: &str) -> bool {
    s.strip_prefix("o-").is_some_and(|r| {
        (10..=32).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

fn is_ou_id(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("ou-") else {
        return false;
    };
    let Some((root, ou)) = rest.split_once('-') else {
        return false;
    };
    let alnum = |p: &str| p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (4..=32).contains(&root.len()) && alnum(root) && (8..=32).contains(&ou.len()) && alnum(ou)
}

/// Splits `arn:PARTITION:organizations::ACCOUNT:RESOURCE` and returns RESOURCE when the rest is well formed.
fn organizations_resource(s: &str) -> Option<&str> {
    let rest = s.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("organizations::")?;
    let (account, resource) = rest.split_once(':')?;
    (partition.starts_with("aws") && AccountId::parse(account).is_ok()).then_some(resource)
}

/// An AWS Organizations organization ARN: `arn:aws:organizations::ACCOUNT:organization/o-xxxxxxxxxx`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrganizationArn(String);
string_newtype!(OrganizationArn);

impl OrganizationArn {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        match organizations_resource(s).and_then(|r| r.strip_prefix("organization/")) {
            Some(org) if is_org_id(org) => Ok(Self(s.to_string())),
            _ => Err(invalid("organization ARN", s, "expected arn:aws:organizations::ACCOUNT:organization/o-...")),
        }
    }
}

/// An organizational unit ARN: `arn:aws:organizations::ACCOUNT:ou/o-xxxxxxxxxx/ou-xxxx-xxxxxxxx`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OuArn(String);
string_newtype!(OuArn);

impl OuArn {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        let parts = organizations_resource(s).and_then(|r| r.strip_prefix("ou/")).and_then(|r| r.split_once('/'));
        match parts {
            Some((org, ou)) if is_org_id(org) && is_ou_id(ou) => Ok(Self(s.to_string())),
            _ => Err(invalid("organizational unit ARN", s, "expected arn:aws:organizations::ACCOUNT:ou/o-.../ou-...")),
        }
    }
}

/// Where a copy lives: an account and a region. `account` is `None` for the function's own account (whose id is
/// known only per invocation), `Some` for a target account of TARGET_ACCOUNTS. Clients, the copy limit,
/// ClientTokens and the provenance lookup are all per place.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Place {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    pub region: Region,
}

impl Place {
    pub fn home(region: Region) -> Self {
        Self { account: None, region }
    }

    pub fn new(account: Option<AccountId>, region: Region) -> Self {
        Self { account, region }
    }

    /// The account that owns copies made here: the target account, or `home`.
    pub fn owner<'a>(&'a self, home: &'a AccountId) -> &'a AccountId {
        self.account.as_ref().unwrap_or(home)
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.account {
            Some(a) => write!(f, "{}/{}", a, self.region),
            None => write!(f, "{}", self.region),
        }
    }
}

#[cfg(test)]
#[path = "ids_tests.rs"]
mod tests;
