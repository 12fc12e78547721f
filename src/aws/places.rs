//! The EC2 clients of the places: the function's own account in each region, and each target account through
//! its role, made on first use.

use super::ec2::AwsEc2;
use crate::core::errors::PortError;
use crate::core::ids::{AccountId, Place, Region};
use crate::ports::Ec2Regions;
use aws_sdk_ec2::Client;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// One EC2 client per place, made on first use. Target accounts' clients use that account's role through
/// aws-config's assume-role credentials provider: one provider per account, shared by all its regions, its
/// credentials cached and refreshed by the SDK's identity cache.
#[derive(Debug)]
pub struct AwsEc2Regions {
    base: aws_config::SdkConfig,
    /// Per target account: its role ARN and the SDK configuration that assumes it.
    accounts: HashMap<AccountId, (String, aws_config::SdkConfig)>,
    clients: Mutex<HashMap<Place, AwsEc2>>,
}

/// The session name the replicator's assumed-role sessions carry (CloudTrail shows it in the target account).
pub const SESSION_NAME: &str = "ami-replicator";

impl AwsEc2Regions {
    pub fn new(base: aws_config::SdkConfig) -> Self {
        Self { base, accounts: HashMap::new(), clients: Mutex::new(HashMap::new()) }
    }

    /// With target accounts (TARGET_ACCOUNTS: account -> role ARN). Makes no call: a role is assumed when its
    /// account's first EC2 call needs credentials.
    pub async fn with_target_roles(base: aws_config::SdkConfig, roles: &BTreeMap<AccountId, String>) -> Self {
        let mut accounts = HashMap::new();
        for (account, role) in roles {
            let provider = aws_config::sts::AssumeRoleProvider::builder(role.clone())
                .configure(&base)
                .session_name(SESSION_NAME)
                .build()
                .await;
            let config = base
                .clone()
                .into_builder()
                .credentials_provider(aws_sdk_ec2::config::SharedCredentialsProvider::new(provider))
                .build();
            accounts.insert(account.clone(), (role.clone(), config));
        }
        Self { base, accounts, clients: Mutex::new(HashMap::new()) }
    }

    fn client(config: &aws_config::SdkConfig, region: &Region) -> Client {
        let config = aws_sdk_ec2::config::Builder::from(config)
            .region(aws_sdk_ec2::config::Region::new(region.to_string()))
            .build();
        Client::from_conf(config)
    }
}

/// The SDK configuration of each place: the function's own, or a target account's through its role. Cheap to
/// clone (the credentials providers and their caches are shared).
#[derive(Debug, Clone)]
pub struct PlaceConfigs {
    base: aws_config::SdkConfig,
    accounts: HashMap<AccountId, (String, aws_config::SdkConfig)>,
}

impl PlaceConfigs {
    /// The configuration to call AWS at `place` with (its region is set by the caller).
    pub fn config(&self, place: &Place) -> Result<aws_config::SdkConfig, PortError> {
        match &place.account {
            None => Ok(self.base.clone()),
            Some(account) => self.accounts.get(account).map(|(_, c)| c.clone()).ok_or_else(|| {
                PortError::permanent("NotConfigured", format!("account {account} is not in TARGET_ACCOUNTS"))
            }),
        }
    }
}

impl AwsEc2Regions {
    /// The places' configurations, for the other clients of a place (SSM).
    pub fn place_configs(&self) -> PlaceConfigs {
        PlaceConfigs { base: self.base.clone(), accounts: self.accounts.clone() }
    }
}

impl Ec2Regions for AwsEc2Regions {
    type Ec2 = AwsEc2;

    fn region(&self, region: &Region) -> AwsEc2 {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(Place::home(region.clone()))
            .or_insert_with(|| AwsEc2::new(Self::client(&self.base, region)))
            .clone()
    }

    fn at(&self, place: &Place) -> Result<AwsEc2, PortError> {
        let Some(account) = &place.account else { return Ok(self.region(&place.region)) };
        let (role, config) = self.accounts.get(account).ok_or_else(|| {
            PortError::permanent("NotConfigured", format!("account {account} is not in TARGET_ACCOUNTS"))
        })?;
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        Ok(clients
            .entry(place.clone())
            .or_insert_with(|| AwsEc2::with_role(Self::client(config, &place.region), role.clone()))
            .clone())
    }
}
