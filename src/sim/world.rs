//! The simulated world: images per region, the work queue, the virtual clock, and what was observed.

use crate::core::errors::PortError;
use crate::core::ids::{AccountId, ImageId, Region};
use crate::core::image::{ImageInfo, ImageState, ImageTraits, LaunchPermission, Tag};
use crate::ports::{CopyRequest, OutgoingMessage};
use std::collections::{BTreeMap, HashMap};

/// How the simulated AWS behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Concurrent copies a destination region accepts (the documented limit is 100).
    pub copy_limit: u32,
    /// A copy stays pending for a duration drawn uniformly from this range, in seconds.
    pub copy_seconds: (u64, u64),
    /// SQS visibility timeout of the work queue, in seconds.
    pub visibility_timeout_seconds: u64,
    /// SQS redrive: a message received more often than this goes to the dead-letter queue.
    pub max_receive_count: u32,
    /// Seed of the simulator's random numbers (copy durations, injected faults).
    pub seed: u64,
    /// Regions that reject paravirtual images.
    pub pv_unsupported: Vec<Region>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            copy_limit: 100,
            copy_seconds: (600, 2400),
            visibility_timeout_seconds: 360,
            max_receive_count: 5,
            seed: 7,
            pv_unsupported: vec![],
        }
    }
}

/// Faults to inject.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Probability that any EC2 call answers RequestLimitExceeded.
    pub throttle_rate: f64,
    /// The next N EC2 calls answer RequestLimitExceeded.
    pub throttle_next: u32,
    /// Probability that a copy ends `failed` instead of `available`.
    pub fail_copy_rate: f64,
    /// The next N copies end `failed`.
    pub fail_next_copies: u32,
    /// The next N SendMessageBatch entries are refused.
    pub refuse_next_sends: u32,
}

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
}

/// One image created by CopyImage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyRecord {
    pub source: ImageId,
    pub source_region: Region,
    pub destination: Region,
    pub image: ImageId,
    pub started_ms: u64,
    pub ready_at_ms: u64,
    pub fails: bool,
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
    pub account: AccountId,
    pub config: SimConfig,
    pub faults: Faults,
    pub images: BTreeMap<Region, BTreeMap<ImageId, SimImage>>,
    pub copies: Vec<CopyRecord>,
    /// API calls by operation name.
    pub calls: BTreeMap<&'static str, u64>,
    pub limit_errors: u64,
    pub throttle_errors: u64,
    /// DescribeImages calls that listed a region's pending images (the in-flight count).
    pub pending_queries: u64,
    /// The most copies pending at once, per destination region.
    pub peak_in_flight: BTreeMap<Region, u32>,
    pub queue: Vec<QueuedMessage>,
    /// Messages stored by the product in its dead-letter queue, with the reason.
    pub dead_letters: Vec<(String, String)>,
    /// Messages moved by SQS's redrive policy (received too often).
    pub redriven: Vec<String>,
    tokens: HashMap<(Region, String), ImageId>,
    rng: u64,
    next_id: u64,
}

impl World {
    pub fn new(account: AccountId, config: SimConfig) -> Self {
        let rng = config.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        Self {
            now_ms: 0,
            account,
            config,
            faults: Faults::default(),
            images: BTreeMap::new(),
            copies: Vec::new(),
            calls: BTreeMap::new(),
            limit_errors: 0,
            throttle_errors: 0,
            pending_queries: 0,
            peak_in_flight: BTreeMap::new(),
            queue: Vec::new(),
            dead_letters: Vec::new(),
            redriven: Vec::new(),
            tokens: HashMap::new(),
            rng,
            next_id: 0x1000,
        }
    }

    /// xorshift64*: deterministic per seed.
    pub fn random(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn fresh_image_id(&mut self) -> ImageId {
        self.next_id += 1;
        ImageId::parse(&format!("ami-{:017x}", self.next_id)).unwrap_or_else(|_| unreachable!("17 hex digits"))
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
        let info = ImageInfo {
            id: id.clone(),
            owner: Some(owner.clone()),
            name: Some(name.to_string()),
            description: Some(format!("{name}, built by the pipeline")),
            state: ImageState::Available,
            tags,
            size_gib: 8,
            traits: Default::default(),
        };
        let image = SimImage {
            info,
            ready_at_ms: None,
            fails: false,
            launch_permissions,
            snapshot_tags: Vec::new(),
            copy_seconds: None,
            kms_key_id: None,
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

    /// Copies pending in `region` now.
    pub fn in_flight(&mut self, region: &Region) -> u32 {
        self.settle(region);
        self.images.get(region).map_or(0, |m| m.values().filter(|i| i.info.state == ImageState::Pending).count() as u32)
    }

    /// Counts an EC2 call and answers with an injected throttling error when one is due.
    pub fn ec2_call(&mut self, op: &'static str) -> Result<(), PortError> {
        *self.calls.entry(op).or_default() += 1;
        let throttled = if self.faults.throttle_next > 0 {
            self.faults.throttle_next -= 1;
            true
        } else {
            self.faults.throttle_rate > 0.0 && self.random() < self.faults.throttle_rate
        };
        if throttled {
            self.throttle_errors += 1;
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

    /// CopyImage as EC2 does it.
    pub fn copy_image(&mut self, destination: &Region, request: &CopyRequest) -> Result<ImageId, PortError> {
        let token_key = (destination.clone(), request.client_token.clone());
        if let Some(existing) = self.tokens.get(&token_key) {
            return Ok(existing.clone());
        }
        let source = match self.image(&request.source_region, &request.source_image) {
            Some(s) if s.info.state == ImageState::Available => s.clone(),
            Some(_) => return Err(PortError::from_code("InvalidAMIID.Unavailable", "source image is not available")),
            None => return Err(PortError::from_code("InvalidAMIID.NotFound", "source image not found")),
        };
        if source.info.traits.paravirtual && self.config.pv_unsupported.contains(destination) {
            return Err(PortError::from_code(
                "InvalidParameterValue",
                format!("Paravirtual images are not supported in {destination}"),
            ));
        }
        let in_flight = self.in_flight(destination);
        if in_flight >= self.config.copy_limit {
            self.limit_errors += 1;
            return Err(PortError::from_code(
                "ResourceLimitExceeded",
                format!("You have reached the maximum of {} concurrent AMI copies", self.config.copy_limit),
            ));
        }
        let duration_ms = match source.copy_seconds {
            Some(base) => (base as f64 * 1000.0 * (0.95 + 0.1 * self.random())) as u64,
            None => {
                let (lo, hi) = self.config.copy_seconds;
                (lo * 1000) + (self.random() * ((hi - lo) * 1000) as f64) as u64
            }
        };
        let fails = if self.faults.fail_next_copies > 0 {
            self.faults.fail_next_copies -= 1;
            true
        } else {
            self.faults.fail_copy_rate > 0.0 && self.random() < self.faults.fail_copy_rate
        };
        let mut tags = Vec::new();
        if request.copy_image_tags {
            // Only the owner's user-defined tags are copied; `aws:` tags never are.
            tags.extend(source.info.tags.iter().filter(|t| !t.key.starts_with("aws:")).cloned());
        }
        for tag in &request.tags {
            tags.retain(|t| t.key != tag.key);
            tags.push(tag.clone());
        }
        let id = self.fresh_image_id();
        let info = ImageInfo {
            id: id.clone(),
            owner: Some(self.account.clone()),
            name: Some(request.name.clone()),
            description: request.description.clone(),
            state: ImageState::Pending,
            tags,
            size_gib: source.info.size_gib,
            traits: ImageTraits {
                encrypted: source.info.traits.encrypted || request.encryption.encrypted,
                deprecation_time: None,
                ..source.info.traits.clone()
            },
        };
        let ready_at_ms = self.now_ms + duration_ms;
        let image = SimImage {
            info,
            ready_at_ms: Some(ready_at_ms),
            fails,
            // Launch permissions are not copied.
            launch_permissions: Vec::new(),
            snapshot_tags: request.tags.clone(),
            copy_seconds: None,
            kms_key_id: request.encryption.kms_key_id.clone(),
        };
        self.images.entry(destination.clone()).or_default().insert(id.clone(), image);
        self.tokens.insert(token_key, id.clone());
        let peak = self.peak_in_flight.entry(destination.clone()).or_default();
        *peak = (*peak).max(in_flight + 1);
        self.copies.push(CopyRecord {
            source: request.source_image.clone(),
            source_region: request.source_region.clone(),
            destination: destination.clone(),
            image: id.clone(),
            started_ms: self.now_ms,
            ready_at_ms,
            fails,
        });
        Ok(id)
    }

    /// Deregisters an image (stopping a pending copy).
    pub fn deregister(&mut self, region: &Region, id: &ImageId) {
        if let Some(images) = self.images.get_mut(region) {
            images.remove(id);
        }
    }

    // ----- SQS -----

    pub fn enqueue(&mut self, message: &OutgoingMessage) {
        self.next_id += 1;
        self.queue.push(QueuedMessage {
            id: format!("msg-{}", self.next_id),
            body: message.body.clone(),
            visible_at_ms: self.now_ms + u64::from(message.delay_seconds.min(900)) * 1000,
            receive_count: 0,
        });
    }

    /// Receives up to `max` visible messages, hiding them for the visibility timeout. Messages received more
    /// than `max_receive_count` times are moved to the dead-letter queue instead (SQS's redrive policy).
    pub fn receive(&mut self, max: usize) -> Vec<QueuedMessage> {
        let now = self.now_ms;
        let hide_until = now + self.config.visibility_timeout_seconds * 1000;
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.queue.len() && out.len() < max {
            if self.queue[i].visible_at_ms <= now {
                if self.queue[i].receive_count >= self.config.max_receive_count {
                    let m = self.queue.remove(i);
                    self.redriven.push(m.body);
                    continue;
                }
                let m = &mut self.queue[i];
                m.receive_count += 1;
                m.visible_at_ms = hide_until;
                out.push(m.clone());
            }
            i += 1;
        }
        out
    }

    /// After an invocation: deletes every message of the batch except those to retry (which reappear when
    /// their visibility timeout ends).
    pub fn settle_batch(&mut self, batch: &[QueuedMessage], retry: &[String]) {
        self.queue.retain(|m| !batch.iter().any(|b| b.id == m.id) || retry.contains(&m.id));
    }

    /// The next time something becomes visible on the queue.
    pub fn next_event_at(&self) -> Option<u64> {
        self.queue.iter().map(|m| m.visible_at_ms).min()
    }

    pub fn advance_to(&mut self, t_ms: u64) {
        self.now_ms = self.now_ms.max(t_ms);
    }

    /// Total API calls (EC2 and SQS).
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }
}
