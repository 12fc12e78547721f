//! The ports: the only ways the core touches AWS. Production implements them with the SDK (`crate::aws`),
//! tests and the benchmark with the simulator (`crate::sim`).

use crate::core::errors::PortError;
use crate::core::ids::{ImageId, Region};
use crate::core::image::{ImageInfo, LaunchPermission, Tag};
use crate::core::rules::CopyEncryption;
use std::future::Future;

/// A CopyImage request, as the core decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyRequest {
    pub source_image: ImageId,
    pub source_region: Region,
    pub name: String,
    pub description: Option<String>,
    /// Deterministic; the same token MUST yield the same copy, however often the request is sent.
    pub client_token: String,
    /// Put on the new image and its snapshots at creation (TagSpecifications).
    pub tags: Vec<Tag>,
    /// Ask EC2 to copy the source's user-defined tags (CopyImageTags).
    pub copy_image_tags: bool,
    /// `Encrypted` and `KmsKeyId`.
    pub encryption: CopyEncryption,
}

/// EC2 in one region.
pub trait Ec2: Send + Sync {
    /// The image `id`, read by id. `Ok(None)` when EC2 does not know it.
    fn describe_image(&self, id: &ImageId) -> impl Future<Output = Result<Option<ImageInfo>, PortError>> + Send;

    /// The images among `ids` owned by this account, in one call. Ids EC2 does not know are absent from the
    /// answer, never an error.
    fn describe_own_images(&self, ids: &[ImageId]) -> impl Future<Output = Result<Vec<ImageInfo>, PortError>> + Send;

    /// The ids of all images owned by this account that are `pending` in this region (copies in flight, counted
    /// against the concurrent-copy limit), in one call.
    fn pending_images(&self) -> impl Future<Output = Result<Vec<ImageId>, PortError>> + Send;

    /// Images owned by this account whose `ami-replicator:source-image` tag is one of `sources`, in one call.
    fn find_copies(&self, sources: &[ImageId]) -> impl Future<Output = Result<Vec<ImageInfo>, PortError>> + Send;

    /// Starts copying into this region and returns the new image id. MUST be idempotent per `client_token`.
    fn copy_image(&self, request: &CopyRequest) -> impl Future<Output = Result<ImageId, PortError>> + Send;

    /// Deregisters an image (this stops a pending copy). An image that is already gone is success.
    fn deregister_image(&self, id: &ImageId) -> impl Future<Output = Result<(), PortError>> + Send;

    /// The launch permissions of `id`.
    fn launch_permissions(&self, id: &ImageId)
        -> impl Future<Output = Result<Vec<LaunchPermission>, PortError>> + Send;

    /// Deprecates `id` at `time` (RFC 3339), as its source is.
    fn enable_deprecation(&self, id: &ImageId, time: &str) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Adds launch permissions to `id`. Adding a permission that is already there is success.
    fn add_launch_permissions(
        &self,
        id: &ImageId,
        grants: &[LaunchPermission],
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Hands out the EC2 port of a region. Implementations MUST make a region's client on first use, not up front:
/// an invocation only pays for the regions it touches.
pub trait Ec2Regions: Send + Sync {
    type Ec2: Ec2;
    fn region(&self, region: &Region) -> Self::Ec2;
}

/// A message for the work queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub body: String,
    /// 0..=900 (SQS's limit).
    pub delay_seconds: u32,
}

/// The product's queues.
pub trait Queue: Send + Sync {
    /// Sends to the work queue (in calls of at most 10). The answer has one entry per message, in order:
    /// `Ok` only when SQS has stored that message.
    fn send(&self, messages: &[OutgoingMessage]) -> impl Future<Output = Vec<Result<(), PortError>>> + Send;

    /// Stores a message that can never succeed in the dead-letter queue, with `reason` as a message attribute.
    /// `Ok(false)` when no dead-letter queue is configured (the caller then leaves the message to SQS's redrive).
    fn dead_letter(&self, body: &str, reason: &str) -> impl Future<Output = Result<bool, PortError>> + Send;
}
