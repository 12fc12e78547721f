//! The simulated world: images per region, the work queue, the virtual clock, and what was observed.

use crate::core::errors::PortError;
use crate::core::ids::{AccountId, ImageId, Region, SnapshotId};
use crate::core::image::{ImageInfo, ImageState, LaunchPermission, Tag};
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use super::config::{Faults, SimConfig};

/// An EBS snapshot of a simulated image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimSnapshot {
    pub id: SnapshotId,
    /// The KMS key it is encrypted with: `None` unencrypted, `Some("aws/ebs")` the AWS-managed key (which cannot
    /// be shared with another account), else a customer-managed key.
    pub kms_key: Option<String>,
    /// Accounts allowed to create volumes from it (and so to copy an image that uses it).
    pub create_volume: Vec<AccountId>,
    pub tags: Vec<Tag>,
}

/// Wall-clock time of virtual time 0: 2026-11-29T00:00:00Z.
pub const SIM_EPOCH_SECS: i64 = 1_795_910_400;

/// The AWS-managed EBS key: snapshots encrypted with it cannot be shared.
pub const AWS_MANAGED_EBS_KEY: &str = "aws/ebs";

/// An image in a simulated region.
#[derive(Debug, Clone)]
pub struct SimImage {
    pub info: ImageInfo,
    /// When a pending image settles, in virtual milliseconds.
    pub ready_at_ms: Option<u64>,
    /// Whether it settles as `failed`.
    pub fails: bool,
    pub launch_permissions: Vec<LaunchPermission>,
    pub snapshot_tags: Vec<Tag>,
    /// How long a copy of this image takes (its size decides it), ±5% per copy; `None`: drawn from
    /// [`SimConfig::copy_seconds`] per copy.
    pub copy_seconds: Option<u64>,
    /// The KMS key a copy was encrypted with (`None`: the default EBS key, or not encrypted).
    pub kms_key_id: Option<String>,
    /// Its EBS snapshots.
    pub snapshots: Vec<SimSnapshot>,
}

/// One image created by CopyImage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyRecord {
    /// The account that made (and owns) the copy.
    pub account: AccountId,
    pub source: ImageId,
    pub source_region: Region,
    pub destination: Region,
    pub image: ImageId,
    pub started_ms: u64,
    pub ready_at_ms: u64,
    pub fails: bool,
    /// A time-based copy's share of the throughput quota, in MiB/s (0: best effort).
    pub throughput_mibps: u64,
    /// When its state-change event reaches the work queue (`None`: no copy events, or this one was lost).
    pub event_at_ms: Option<u64>,
}

/// A message on the simulated work queue.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    pub id: String,
    pub body: String,
    pub visible_at_ms: u64,
    pub receive_count: u32,
}

#[derive(Debug)]
pub struct World {
    pub now_ms: u64,
    /// The function's own account.
    pub account: AccountId,
    /// Target accounts whose role the replicator may assume (TARGET_ACCOUNTS, as IAM sees it).
    pub assumable: BTreeSet<AccountId>,
    /// Target accounts whose role refuses the replicator (AccessDenied from STS).
    pub denied_roles: BTreeSet<AccountId>,
    /// Accounts the source account's KMS keys are shared with (their key policies).
    pub kms_shared_with: BTreeSet<AccountId>,
    /// Opt-in regions not enabled (for every account): EC2 answers AuthFailure there.
    pub disabled_regions: BTreeSet<Region>,
    pub config: SimConfig,
    pub faults: Faults,
    pub images: BTreeMap<Region, BTreeMap<ImageId, SimImage>>,
    pub copies: Vec<CopyRecord>,
    /// API calls by operation name.
    pub calls: BTreeMap<&'static str, u64>,
    pub limit_errors: u64,
    /// Invocations that stopped before acknowledging (see [`Faults::crash_rate`]).
    pub crashes: u64,
    /// Calls answered RequestLimitExceeded (by the request buckets or injected).
    pub throttle_errors: u64,
    /// [`Self::throttle_errors`] by operation.
    pub throttled: BTreeMap<&'static str, u64>,
    /// EC2's request buckets: tokens per (account, region, bucket name).
    pub(super) buckets: HashMap<(AccountId, Region, &'static str), super::throttle::Bucket>,
    /// DescribeImages calls that listed a region's pending images (the in-flight count).
    pub pending_queries: u64,
    /// The most copies pending at once, per account and destination region.
    pub peak_in_flight: BTreeMap<(AccountId, Region), u32>,
    pub queue: Vec<QueuedMessage>,
    /// Messages stored by the product in its dead-letter queue, with the reason.
    pub dead_letters: Vec<(String, String)>,
    /// Events published on the home event bus, with the virtual time in milliseconds.
    pub published: Vec<(u64, crate::ports::OutgoingEvent)>,
    /// SSM parameters per (account, region, name).
    pub parameters: BTreeMap<(AccountId, Region, String), String>,
    /// Every change an EC2 call made to an existing image or snapshot, in order: what the product did to what.
    /// Recorded only; the simulator refuses nothing on its account (a property it enforced would prove nothing).
    pub effects: Vec<super::SimEffect>,
    /// What uses an image (DescribeImageReferences): "type arn" per image, set by the tests.
    pub references: BTreeMap<ImageId, Vec<String>>,
    /// Launch templates per (owner, region, id or name), their versions; and the versions made per ClientToken.
    pub launch_templates: BTreeMap<(AccountId, Region, String), Vec<crate::core::launch_templates::Version>>,
    pub launch_template_tokens: BTreeMap<(AccountId, Region, String), i64>,
    /// Messages moved by SQS's redrive policy (received too often).
    pub redriven: Vec<String>,
    /// Snapshots of deregistered images (EC2 keeps them until DeleteSnapshot), with their region and owner.
    pub orphan_snapshots: Vec<(Region, Option<AccountId>, SimSnapshot)>,
    /// Registered Image Builder builds: image build version ARN -> the AMIs it made (region, image, account).
    pub image_builds: BTreeMap<String, Vec<(Region, ImageId, AccountId)>>,
    pub(super) tokens: HashMap<(AccountId, Region, String), ImageId>,
    /// Real time spent inside the simulated ports (their bookkeeping, not the handler's work).
    pub sim_time: std::time::Duration,
    /// Admission leases (the stack's DynamoDB table), by key.
    pub leases: BTreeMap<String, super::lease::SimLease>,
    /// The largest message and the largest SendMessageBatch (bytes) the function sent (MaximumMessageSize bounds
    /// both).
    /// Accounts whose role may copy instance-store-backed AMIs (the S3 grants of InstanceStoreSourceBundleArns).
    pub s3_copiers: BTreeSet<AccountId>,
    pub largest_message_bytes: usize,
    /// With `SimConfig::call_latency_ms`: since when tokio's clock counts the time calls take (the simulation's
    /// clock adds it; each invocation's share is then added to `now_ms`).
    pub latency_origin: Option<tokio::time::Instant>,
    pub largest_batch_bytes: usize,
    /// The function's record of the copies CopyImage returned it, by (place key, copy): only the function writes.
    pub copy_records: BTreeSet<(String, ImageId)>,
    rng: u64,
    pub(super) next_id: u64,
}

impl World {
    pub fn new(account: AccountId, config: SimConfig) -> Self {
        let rng = config.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        Self {
            now_ms: 0,
            account,
            assumable: BTreeSet::new(),
            denied_roles: BTreeSet::new(),
            kms_shared_with: BTreeSet::new(),
            disabled_regions: BTreeSet::new(),
            config,
            faults: Faults::default(),
            images: BTreeMap::new(),
            copies: Vec::new(),
            calls: BTreeMap::new(),
            limit_errors: 0,
            crashes: 0,
            throttle_errors: 0,
            throttled: BTreeMap::new(),
            buckets: HashMap::new(),
            pending_queries: 0,
            peak_in_flight: BTreeMap::new(),
            queue: Vec::new(),
            dead_letters: Vec::new(),
            published: Vec::new(),
            parameters: BTreeMap::new(),
            redriven: Vec::new(),
            effects: Vec::new(),
            references: BTreeMap::new(),
            launch_templates: BTreeMap::new(),
            launch_template_tokens: BTreeMap::new(),
            orphan_snapshots: Vec::new(),
            image_builds: BTreeMap::new(),
            tokens: HashMap::new(),
            sim_time: std::time::Duration::ZERO,
            leases: BTreeMap::new(),
            copy_records: BTreeSet::new(),
            largest_message_bytes: 0,
            s3_copiers: BTreeSet::new(),
            latency_origin: None,
            largest_batch_bytes: 0,
            rng,
            next_id: 0x1000,
        }
    }

    /// The virtual clock as a wall-clock time: [`SIM_EPOCH_SECS`] plus the virtual time.
    pub fn now_rfc3339(&self) -> String {
        crate::core::time::format_rfc3339(SIM_EPOCH_SECS + (self.now_ms / 1000) as i64)
    }

    /// xorshift64*: deterministic per seed.
    pub fn random(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(super) fn fresh_image_id(&mut self) -> ImageId {
        self.next_id += 1;
        ImageId::parse(&format!("ami-{:017x}", self.next_id)).unwrap_or_else(|_| unreachable!("17 hex digits"))
    }

    pub(super) fn fresh_snapshot_id(&mut self) -> SnapshotId {
        self.next_id += 1;
        SnapshotId::parse(&format!("snap-{:017x}", self.next_id)).unwrap_or_else(|_| unreachable!("17 hex digits"))
    }

    /// Registers an available image owned by `owner` (a source built by a pipeline).
    pub fn add_image(
        &mut self,
        region: &Region,
        owner: &AccountId,
        name: &str,
        tags: Vec<Tag>,
        launch_permissions: Vec<LaunchPermission>,
    ) -> ImageId {
        let id = self.fresh_image_id();
        let snapshot = SimSnapshot { id: self.fresh_snapshot_id(), kms_key: None, create_volume: vec![], tags: vec![] };
        let info = ImageInfo {
            id: id.clone(),
            owner: Some(owner.clone()),
            name: Some(name.to_string()),
            description: Some(format!("{name}, built by the pipeline")),
            state: ImageState::Available,
            tags,
            size_gib: 8,
            traits: Default::default(),
            snapshots: vec![snapshot.id.clone()],
            created: Some(self.now_rfc3339()),
            // Registered (or built) by hand: EC2 records no source image.
            origin: None,
            last_launched: None,
        };
        let image = SimImage {
            info,
            ready_at_ms: None,
            fails: false,
            launch_permissions,
            snapshot_tags: Vec::new(),
            copy_seconds: None,
            kms_key_id: None,
            snapshots: vec![snapshot],
        };
        self.images.entry(region.clone()).or_default().insert(id.clone(), image);
        id
    }

    /// Settles the pending images of `region` whose time has come.
    pub fn settle(&mut self, region: &Region) {
        let now = self.now_ms;
        if let Some(images) = self.images.get_mut(region) {
            for image in images.values_mut() {
                if image.info.state == ImageState::Pending && image.ready_at_ms.is_some_and(|t| t <= now) {
                    image.info.state = if image.fails {
                        ImageState::Failed(Some("Copy failed: simulated snapshot error".into()))
                    } else {
                        ImageState::Available
                    };
                }
            }
        }
    }

    /// Encrypts the snapshots of `image` with `kms_key` (`aws/ebs`: the AWS-managed key).
    pub fn encrypt_image(&mut self, region: &Region, image: &ImageId, kms_key: &str) {
        if let Some(img) = self.image_mut(region, image) {
            img.info.traits.encrypted = true;
            for s in &mut img.snapshots {
                s.kms_key = Some(kms_key.to_string());
            }
        }
    }

    /// Copies of `account` pending in `region` now (the limit is per account and region).
    pub fn in_flight(&mut self, region: &Region, account: &AccountId) -> u32 {
        self.settle(region);
        self.images.get(region).map_or(0, |m| {
            m.values().filter(|i| i.info.state == ImageState::Pending && i.info.owner.as_ref() == Some(account)).count()
                as u32
        })
    }

    /// Whether `account` may launch (and so see) `image`.
    pub fn can_launch(image: &SimImage, account: &AccountId) -> bool {
        image.info.owner.as_ref() == Some(account)
            || image.launch_permissions.iter().any(|p| match p {
                LaunchPermission::Account(a) => a == account,
                LaunchPermission::Public => true,
                _ => false,
            })
    }

    /// The snapshot `id` in `region` (of any image).
    pub fn snapshot_mut(&mut self, region: &Region, id: &SnapshotId) -> Option<(&AccountId, &mut SimSnapshot)> {
        self.images.get_mut(region)?.values_mut().find_map(|img| {
            let owner = img.info.owner.as_ref()?;
            img.snapshots.iter_mut().find(|s| &s.id == id).map(|s| (owner, s))
        })
    }

    /// Counts an EC2 call by `account` in `region`, and answers RequestLimitExceeded when its request bucket is
    /// empty or an injected throttling error is due.
    pub fn ec2_call(&mut self, op: &'static str, account: &AccountId, region: &Region) -> Result<(), PortError> {
        *self.calls.entry(op).or_default() += 1;
        let throttled = if self.take_token(op, account, region).is_err() {
            true
        } else if self.faults.throttle_next > 0 {
            self.faults.throttle_next -= 1;
            true
        } else {
            self.faults.throttle_rate > 0.0 && self.random() < self.faults.throttle_rate
        };
        if throttled {
            self.throttle_errors += 1;
            *self.throttled.entry(op).or_default() += 1;
            return Err(PortError::from_code("RequestLimitExceeded", format!("{op}: Request limit exceeded.")));
        }
        Ok(())
    }

    pub fn image(&mut self, region: &Region, id: &ImageId) -> Option<&SimImage> {
        self.settle(region);
        self.images.get(region).and_then(|m| m.get(id))
    }

    pub fn image_mut(&mut self, region: &Region, id: &ImageId) -> Option<&mut SimImage> {
        self.settle(region);
        self.images.get_mut(region).and_then(|m| m.get_mut(id))
    }

    /// Deregisters an image (stopping a pending copy). Its snapshots stay (as in EC2) until deleted.
    pub fn deregister(&mut self, region: &Region, id: &ImageId) {
        // A copy deregistered while pending never becomes available: no event will tell of it.
        let event_id = format!("copy-event-{id}");
        self.queue.retain(|m| !m.body.contains(&event_id));
        if let Some(image) = self.images.get_mut(region).and_then(|images| images.remove(id)) {
            let kept = image.snapshots.into_iter().map(|s| (region.clone(), image.info.owner.clone(), s));
            self.orphan_snapshots.extend(kept);
        }
    }

    /// Deletes a snapshot of `account` left by a deregistered image. As the IAM policy allows, only snapshots
    /// carrying the provenance tag may be deleted; one still used by a registered image cannot be.
    pub fn delete_snapshot(&mut self, region: &Region, account: &AccountId, id: &SnapshotId) -> Result<(), PortError> {
        if self.snapshot_mut(region, id).is_some() {
            return Err(PortError::from_code("InvalidSnapshot.InUse", format!("{id} is used by a registered image")));
        }
        let Some(pos) = self.orphan_snapshots.iter().position(|(r, _, s)| r == region && &s.id == id) else {
            return Ok(());
        };
        let (_, owner, snapshot) = &self.orphan_snapshots[pos];
        let tagged = snapshot.tags.iter().any(|t| t.key == crate::core::provenance::SOURCE_IMAGE_TAG);
        if owner.as_ref() != Some(account) || !tagged {
            return Err(PortError::from_code("UnauthorizedOperation", format!("not allowed to delete {id}")));
        }
        self.orphan_snapshots.remove(pos);
        Ok(())
    }

    /// DisableImage (`disabled`) or EnableImage by `account`: only its own images; as in EC2, disabling takes away
    /// every launch permission (and enabling gives none back); asking for the state an image is in changes nothing.
    pub(super) fn set_disabled(
        &mut self,
        region: &Region,
        account: &AccountId,
        id: &ImageId,
        disabled: bool,
    ) -> Result<(), PortError> {
        let missing = || PortError::from_code("InvalidAMIID.NotFound", format!("The image id '[{id}]' does not exist"));
        let image = self.image_mut(region, id).ok_or_else(missing)?;
        if image.info.owner.as_ref() != Some(account) {
            return Err(PortError::from_code("AuthFailure", format!("{id} is not owned by {account}")));
        }
        match (disabled, image.info.state.clone()) {
            (true, ImageState::Available) => {
                image.info.state = ImageState::Other("disabled".into());
                image.launch_permissions.clear();
            }
            (false, s) if s.is_disabled() => image.info.state = ImageState::Available,
            (true, s) if s.is_disabled() => {}
            (false, ImageState::Available) => {}
            (_, s) => return Err(PortError::from_code("InvalidAMIID.Unavailable", format!("{id} is {s}"))),
        }
        Ok(())
    }

    /// Total API calls (EC2 and SQS).
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }
}
