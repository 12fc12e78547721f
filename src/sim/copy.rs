//! CopyImage in the simulated world, as EC2 does it: idempotent per ClientToken and account, the concurrent-copy
//! limit per account and region, sharing rules for another account's source, tags copied as EC2 copies them,
//! and, when configured, the copy's state-change event on its way to the work queue.

use super::world::{CopyRecord, QueuedMessage, SimImage, SimSnapshot, World, SIM_EPOCH_SECS};
use crate::core::errors::PortError;
use crate::core::ids::{AccountId, ImageId, Region};
use crate::core::image::{ImageInfo, ImageState, ImageTraits, Tag};
use crate::ports::CopyRequest;

impl World {
    /// CopyImage as EC2 does it, called by `caller` in `destination`. A source of another account must be
    /// shared with the caller (launch permission), and so must its snapshots (createVolumePermission) and, when
    /// encrypted, its KMS key; an encrypted source copied by another account is re-encrypted with a key of the
    /// caller's.
    pub fn copy_image(
        &mut self,
        destination: &Region,
        caller: &AccountId,
        request: &CopyRequest,
    ) -> Result<ImageId, PortError> {
        let token_key = (caller.clone(), destination.clone(), request.client_token.clone());
        if let Some(existing) = self.tokens.get(&token_key) {
            return Ok(existing.clone());
        }
        let source = match self.image(&request.source_region, &request.source_image) {
            Some(s) if !Self::can_launch(s, caller) => {
                return Err(PortError::from_code("InvalidAMIID.NotFound", "source image not found"))
            }
            Some(s) if s.info.state == ImageState::Available => s.clone(),
            Some(_) => return Err(PortError::from_code("InvalidAMIID.Unavailable", "source image is not available")),
            None => return Err(PortError::from_code("InvalidAMIID.NotFound", "source image not found")),
        };
        if source.info.owner.as_ref() != Some(caller) {
            if source.snapshots.iter().any(|s| !s.create_volume.contains(caller)) {
                return Err(PortError::from_code(
                    "AuthFailure",
                    "You do not have permission to access the storage of this ami",
                ));
            }
            let encrypted = source.snapshots.iter().any(|s| s.kms_key.is_some());
            if encrypted && !self.kms_shared_with.contains(caller) {
                return Err(PortError::from_code(
                    "AccessDeniedException",
                    "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access",
                ));
            }
            if encrypted && !request.encryption.encrypted {
                return Err(PortError::from_code(
                    "InvalidParameter",
                    "an encrypted snapshot of another account must be copied with Encrypted and a key of yours",
                ));
            }
        }
        // An instance-store-backed AMI is copied through S3, with the caller's S3 permissions (the templates'
        // InstanceStoreSourceBundleArns): EC2 creates amis-for-ACCOUNT-in-REGION-* on the first copy there.
        if source.info.traits.instance_store && !self.s3_copiers.contains(caller) {
            return Err(PortError::from_code(
                "AccessDenied",
                format!(
                    "User is not authorized to perform: s3:CreateBucket on resource: arn:aws:s3:::amis-for-{caller}-in-{destination}-*"
                ),
            ));
        }
        if source.info.traits.paravirtual && self.config.pv_unsupported.contains(destination) {
            return Err(PortError::from_code(
                "InvalidParameterValue",
                format!("Paravirtual images are not supported in {destination}"),
            ));
        }
        let in_flight = self.in_flight(destination, caller);
        if in_flight >= self.config.copy_limit {
            self.limit_errors += 1;
            return Err(PortError::from_code(
                "ResourceLimitExceeded",
                format!("You have reached the maximum of {} concurrent AMI copies", self.config.copy_limit),
            ));
        }
        let (duration_ms, throughput_mibps) = match request.completion_minutes {
            Some(minutes) => {
                self.time_based(&request.source_region, destination, caller, source.info.size_gib, minutes)?
            }
            None => (self.best_effort_ms(source.copy_seconds), 0),
        };
        let fails = if self.faults.fail_next_copies > 0 {
            self.faults.fail_next_copies -= 1;
            true
        } else {
            self.faults.fail_copy_rate > 0.0 && self.random() < self.faults.fail_copy_rate
        };
        if request.tags.len() > crate::core::provenance::MAX_TAGS {
            return Err(PortError::from_code("TagLimitExceeded", "The maximum number of tags per resource is 50"));
        }
        let mut tags: Vec<Tag> = Vec::new();
        for tag in &request.tags {
            tags.retain(|t| t.key != tag.key);
            tags.push(tag.clone());
        }
        let id = self.fresh_image_id();
        let snapshots: Vec<SimSnapshot> = source
            .snapshots
            .iter()
            .map(|s| SimSnapshot {
                id: self.fresh_snapshot_id(),
                kms_key: if request.encryption.encrypted {
                    Some(
                        request.encryption.kms_key_id.clone().unwrap_or_else(|| format!("default-ebs-key-of-{caller}")),
                    )
                } else {
                    s.kms_key.clone()
                },
                create_volume: vec![],
                tags: request.tags.clone(),
            })
            .collect();
        let info = ImageInfo {
            id: id.clone(),
            owner: Some(caller.clone()),
            name: Some(request.name.clone()),
            description: request.description.clone(),
            state: ImageState::Pending,
            tags,
            size_gib: source.info.size_gib,
            traits: ImageTraits {
                encrypted: source.info.traits.encrypted || request.encryption.encrypted,
                deprecation_time: None,
                // CopyImage carries neither deprecation nor deregistration protection over.
                protection: Default::default(),
                ..source.info.traits.clone()
            },
            snapshots: snapshots.iter().map(|s| s.id.clone()).collect(),
            created: Some(self.now_rfc3339()),
            // EC2 records the image a copy was made from (SourceImageId, SourceImageRegion); nobody can write it.
            origin: Some(crate::core::image::Origin {
                image: request.source_image.clone(),
                region: request.source_region.clone(),
                recorded: false,
            }),
            last_launched: None,
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
            snapshots,
        };
        self.images.entry(destination.clone()).or_default().insert(id.clone(), image);
        self.tokens.insert(token_key, id.clone());
        let mut event_at_ms = None;
        if let Some((lo, hi)) = self.config.copy_events {
            let delay_ms = (lo * 1000) + (self.random() * ((hi - lo) * 1000) as f64) as u64;
            if self.random() >= self.config.copy_event_loss {
                let event = serde_json::json!({
                    "version": "0", "id": format!("copy-event-{id}"), "detail-type": "EC2 AMI State Change",
                    "source": "aws.ec2", "account": caller.as_str(), "region": destination.as_str(),
                    "time": crate::core::time::format_rfc3339(SIM_EPOCH_SECS + (ready_at_ms / 1000) as i64),
                    "resources": [], "detail": {"ImageId": id.as_str(), "State": if fails { "failed" } else { "available" }}
                });
                // Delivered as deployed: the region forwarder's rule, then the home rule, must route it.
                if super::routing::routed_from_forwarder(&event) {
                    event_at_ms = Some(ready_at_ms + delay_ms);
                    self.next_id += 1;
                    self.queue.push(QueuedMessage {
                        id: format!("msg-{}", self.next_id),
                        body: event.to_string(),
                        visible_at_ms: ready_at_ms + delay_ms,
                        receive_count: 0,
                    });
                }
            }
        }
        let peak = self.peak_in_flight.entry((caller.clone(), destination.clone())).or_default();
        *peak = (*peak).max(in_flight + 1);
        self.copies.push(CopyRecord {
            account: caller.clone(),
            source: request.source_image.clone(),
            source_region: request.source_region.clone(),
            destination: destination.clone(),
            image: id.clone(),
            started_ms: self.now_ms,
            ready_at_ms,
            fails,
            throughput_mibps,
            event_at_ms,
        });
        Ok(id)
    }

    fn best_effort_ms(&mut self, copy_seconds: Option<u64>) -> u64 {
        match copy_seconds {
            Some(base) => (base as f64 * 1000.0 * (0.95 + 0.1 * self.random())) as u64,
            None => {
                let (lo, hi) = self.config.copy_seconds;
                (lo * 1000) + (self.random() * ((hi - lo) * 1000) as f64) as u64
            }
        }
    }

    /// A time-based copy (EBS user guide, "Time-based copies"): it needs size / duration of throughput, at most
    /// 500 MiB/s per snapshot; the concurrent time-based copies of an account between two regions share a
    /// cumulative quota. With some quota left but less than needed, the copy starts and takes longer; with none
    /// left, CopyImage is refused (capacity: retry later). Returns the copy's duration and throughput.
    fn time_based(
        &mut self,
        source_region: &Region,
        destination: &Region,
        caller: &AccountId,
        size_gib: u32,
        minutes: u32,
    ) -> Result<(u64, u64), PortError> {
        const PER_SNAPSHOT_MIBPS: u64 = 500;
        let now = self.now_ms;
        let used: u64 = self
            .copies
            .iter()
            .filter(|c| {
                &c.account == caller
                    && &c.source_region == source_region
                    && &c.destination == destination
                    && c.ready_at_ms > now
            })
            .map(|c| c.throughput_mibps)
            .sum();
        let available = self.config.copy_throughput_quota_mibps.saturating_sub(used);
        if available == 0 {
            self.limit_errors += 1;
            return Err(PortError::from_code(
                "ResourceLimitExceeded",
                format!(
                    "The cumulative snapshot copy throughput quota ({} MiB/s) from {source_region} to {destination} is in use",
                    self.config.copy_throughput_quota_mibps
                ),
            ));
        }
        let size_mib = u64::from(size_gib.max(1)) * 1024;
        let seconds = u64::from(minutes) * 60;
        let needed = size_mib.div_ceil(seconds).max(1);
        let granted = needed.min(available).min(PER_SNAPSHOT_MIBPS);
        // Within the requested duration when the throughput is granted (EBS may finish a little early).
        let duration_ms = if granted == needed {
            (seconds as f64 * 1000.0 * (0.9 + 0.1 * self.random())) as u64
        } else {
            size_mib * 1000 / granted
        };
        Ok((duration_ms, granted))
    }
}
