//! The ports: the only ways the core touches AWS. Production implements them with the SDK (`crate::aws`),
//! tests and the benchmark with the simulator (`crate::sim`).

use crate::core::copy_rules::CopyEncryption;
use crate::core::errors::PortError;
use crate::core::ids::{AccountId, ImageId, Place, Region, SnapshotId};
use crate::core::image::{ImageInfo, LaunchPermission, Tag};
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
    /// Put on the new image and its snapshots at creation (TagSpecifications): the product's own and the source's
    /// user tags as read from EC2. CopyImageTags is never asked for: it copies only the tags the copying account
    /// attached (none in a target account), and any tag under the product's prefix.
    pub tags: Vec<Tag>,
    /// `Encrypted` and `KmsKeyId`.
    pub encryption: CopyEncryption,
    /// `SnapshotCopyCompletionDurationMinutes` (a time-based copy); `None`: best effort.
    pub completion_minutes: Option<u32>,
}

/// EC2 in one region.
pub trait Ec2: Send + Sync {
    /// The image `id`, read by id. `Ok(None)` when EC2 does not know it.
    fn describe_image(&self, id: &ImageId) -> impl Future<Output = Result<Option<ImageInfo>, PortError>> + Send;

    /// The images among `ids` this account can see (its own, shared with it, public; disabled ones included), in
    /// one call per 200 ids (the sources of a batch). Ids EC2 does not know are absent, never an error.
    fn describe_images(&self, ids: &[ImageId]) -> impl Future<Output = Result<Vec<ImageInfo>, PortError>> + Send;

    /// The images among `ids` owned by this account, in one call. Ids EC2 does not know are absent from the
    /// answer, never an error.
    fn describe_own_images(&self, ids: &[ImageId]) -> impl Future<Output = Result<Vec<ImageInfo>, PortError>> + Send;

    /// All images owned by this account that are `pending` in this region (copies in flight, counted against
    /// the concurrent-copy limit), with their tags, in one call.
    fn pending_images(&self) -> impl Future<Output = Result<Vec<ImageInfo>, PortError>> + Send;

    /// The available and disabled images of `owners` (this account's own among them) that this account can see,
    /// i.e. its own and those shared with it, in as few calls as DescribeImages' pages allow (the sweep's listing:
    /// available ones may lack copies, disabled ones may have copies to disable).
    fn source_images_of(&self, owners: &[AccountId]) -> impl Future<Output = Result<Vec<ImageInfo>, PortError>> + Send;

    /// Images owned by this account whose `ami-replicator:source-image` tag is one of `sources`, in one call.
    fn find_copies(&self, sources: &[ImageId]) -> impl Future<Output = Result<Vec<ImageInfo>, PortError>> + Send;

    /// The versions of launch template `template` (an id `lt-...` or a name), each with its image id, in as few
    /// calls as DescribeLaunchTemplateVersions' pages allow.
    fn launch_template_versions(
        &self,
        template: &str,
    ) -> impl Future<Output = Result<Vec<crate::core::launch_templates::Version>, PortError>> + Send;

    /// A new version of `template` from version `from` with only the image id set to `image`; its number.
    /// MUST be idempotent per `token` (CreateLaunchTemplateVersion's ClientToken).
    fn create_launch_template_version(
        &self,
        template: &str,
        from: i64,
        image: &ImageId,
        token: &str,
    ) -> impl Future<Output = Result<i64, PortError>> + Send;

    /// Makes `version` the default version of `template` (ModifyLaunchTemplate).
    fn set_default_launch_template_version(
        &self,
        template: &str,
        version: i64,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Images owned by this account that carry this product's provenance tag and the tag `key` = `value` (a
    /// family, for retention), in one call.
    fn family_copies(&self, key: &str, value: &str) -> impl Future<Output = Result<Vec<ImageInfo>, PortError>> + Send;

    /// Starts copying into this region and returns the new image id. MUST be idempotent per `client_token`.
    fn copy_image(&self, request: &CopyRequest) -> impl Future<Output = Result<ImageId, PortError>> + Send;

    /// Deregisters an image (this stops a pending copy). An image that is already gone is success.
    fn deregister_image(&self, id: &ImageId) -> impl Future<Output = Result<(), PortError>> + Send;

    /// The launch permissions of `id`.
    fn launch_permissions(&self, id: &ImageId)
        -> impl Future<Output = Result<Vec<LaunchPermission>, PortError>> + Send;

    /// Deprecates `id` at `time` (RFC 3339), as its source is.
    fn enable_deprecation(&self, id: &ImageId, time: &str) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Protects `id` from deregistration (EnableImageDeregistrationProtection), with the 24-hour cooldown when
    /// `with_cooldown`, as its source is. Enabling what is enabled is success.
    fn enable_deregistration_protection(
        &self,
        id: &ImageId,
        with_cooldown: bool,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Disables `id` (DisableImage), one of the product's own copies: it can no longer be launched and loses its
    /// launch permissions. Disabling a disabled image succeeds.
    fn disable_image(&self, id: &ImageId) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Enables a disabled copy again (EnableImage). Its launch permissions are not restored: share it again.
    fn enable_image(&self, id: &ImageId) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Adds launch permissions to `id`. Adding a permission that is already there is success.
    fn add_launch_permissions(
        &self,
        id: &ImageId,
        grants: &[LaunchPermission],
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Lets `account` create volumes from `snapshot` (ModifySnapshotAttribute createVolumePermission add), which a
    /// copy made by that account needs. Granting what is already granted is success. A snapshot encrypted with
    /// the AWS-managed key `aws/ebs` cannot be shared: EC2 answers `OperationNotPermitted`.
    fn add_create_volume_permission(
        &self,
        snapshot: &SnapshotId,
        account: &AccountId,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Adds `tags` to this product's copies `ids` (state marks: shared, the tombstone of a replication that gave
    /// up, a failed share, kept), in one call per 1,000 images.
    fn add_tags(&self, ids: &[ImageId], tags: &[Tag]) -> impl Future<Output = Result<(), PortError>> + Send;

    /// What still uses the images `ids` (DescribeImageReferences, every resource type: instances, launch
    /// templates, SSM parameters, Image Builder recipes), as (image, "type arn") pairs, in as few calls as its
    /// pages allow. An image nothing uses is absent.
    fn image_references(
        &self,
        ids: &[ImageId],
    ) -> impl Future<Output = Result<Vec<(ImageId, String)>, PortError>> + Send;

    /// Deregisters one of the product's copies and deletes its snapshots in the same call (DeregisterImage with
    /// DeleteAssociatedSnapshots): no snapshot is left behind by a fault between two calls. An image that is
    /// already gone is success. Answers the snapshots EC2 could not delete, each with why (`snap-...: code`).
    fn deregister_with_snapshots(&self, id: &ImageId) -> impl Future<Output = Result<Vec<String>, PortError>> + Send;
}

/// Hands out the EC2 port of a place. Implementations MUST make a place's client on first use, not up front:
/// an invocation only pays for the places it touches.
pub trait Ec2Regions: Send + Sync {
    type Ec2: Ec2;

    /// EC2 in `region`, with the function's own credentials.
    fn region(&self, region: &Region) -> Self::Ec2;

    /// EC2 at a place: the function's own account, or a target account through its role (assumed with
    /// credentials cached and refreshed by the SDK). `Err` (permanent) for an account that is not configured.
    /// A role that cannot be assumed shows in the calls: they fail with `AssumeRoleDenied`.
    fn at(&self, place: &Place) -> Result<Self::Ec2, PortError>;
}

/// An AMI that an EC2 Image Builder build produced (GetImage's `outputResources.amis`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltAmi {
    pub region: Region,
    pub image: ImageId,
    /// The account that owns it; `None` when Image Builder did not say.
    pub account: Option<AccountId>,
}

/// EC2 Image Builder in the function's region.
pub trait ImageBuilder: Send + Sync {
    /// The AMIs of an image build version (its ARN, `resources[0]` of the state-change event), in one call.
    fn output_amis(
        &self,
        image_build_version_arn: &str,
    ) -> impl Future<Output = Result<Vec<BuiltAmi>, PortError>> + Send;
}

/// For deployments (and tests) that take no Image Builder events: every call is a permanent error.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoImageBuilder;

impl ImageBuilder for NoImageBuilder {
    async fn output_amis(&self, arn: &str) -> Result<Vec<BuiltAmi>, PortError> {
        Err(PortError::permanent("NotConfigured", format!("no Image Builder client to read {arn}")))
    }
}

/// A message for the work queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub body: String,
    /// 0..=900 (SQS's limit).
    pub delay_seconds: u32,
}

/// A message of the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub body: String,
    /// The `failure_reason` attribute.
    pub reason: String,
}

/// The product's queues.
pub trait Queue: Send + Sync {
    /// Sends to the work queue (in calls of at most 10). The answer has one entry per message, in order:
    /// `Ok` only when SQS has stored that message.
    fn send(&self, messages: &[OutgoingMessage]) -> impl Future<Output = Vec<Result<(), PortError>>> + Send;

    /// Stores a message that can never succeed in the dead-letter queue, with `reason` as a message attribute.
    /// `Ok(false)` when no dead-letter queue is configured (the caller then leaves the message to SQS's redrive).
    fn dead_letter(&self, body: &str, reason: &str) -> impl Future<Output = Result<bool, PortError>> + Send;

    /// The messages in the dead-letter queue with their reasons, read without consuming them (the status
    /// command). Empty when no dead-letter queue is configured.
    fn peek_dead_letters(&self) -> impl Future<Output = Result<Vec<DeadLetter>, PortError>> + Send;
}

/// An event the product publishes (PUBLISH_EVENTS) on the home region's default event bus, `source`
/// [`EVENT_SOURCE`].
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingEvent {
    pub detail_type: String,
    pub detail: serde_json::Value,
    /// ARNs the event is about (the copy).
    pub resources: Vec<String>,
}

/// The `source` of the events the product publishes.
pub const EVENT_SOURCE: &str = "ami-replicator";

/// A boxed future: the outputs port is used as a trait object (it is optional, and not on the hot path).
pub type PortFuture<'a, T> = futures::future::BoxFuture<'a, Result<T, PortError>>;

/// What the product tells its consumers: completion events and SSM parameters. Both are optional outputs; a
/// failure here never changes what happens to a copy.
pub trait Outputs: Send + Sync {
    /// PutEvents on the default event bus of the function's region (in calls of at most 10 entries). `Ok` only
    /// when every entry was accepted.
    fn publish<'a>(&'a self, events: &'a [OutgoingEvent]) -> PortFuture<'a, ()>;

    /// The value of the SSM parameter `name` at `place` (its account and region); `None` when it does not exist.
    fn parameter<'a>(&'a self, place: &'a Place, name: &'a str) -> PortFuture<'a, Option<String>>;

    /// Puts `image` as the value of the parameter `name` at `place`, with data type `aws:ec2:image`
    /// (overwriting).
    fn put_image_parameter<'a>(&'a self, place: &'a Place, name: &'a str, image: &'a ImageId) -> PortFuture<'a, ()>;
}

/// For deployments (and tests) without outputs: publishing and parameters are refused as not configured.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoOutputs;

impl Outputs for NoOutputs {
    fn publish<'a>(&'a self, _events: &'a [OutgoingEvent]) -> PortFuture<'a, ()> {
        Box::pin(async { Err(PortError::permanent("NotConfigured", "no event bus client")) })
    }

    fn parameter<'a>(&'a self, _place: &'a Place, _name: &'a str) -> PortFuture<'a, Option<String>> {
        Box::pin(async { Err(PortError::permanent("NotConfigured", "no SSM client")) })
    }

    fn put_image_parameter<'a>(&'a self, _p: &'a Place, _n: &'a str, _i: &'a ImageId) -> PortFuture<'a, ()> {
        Box::pin(async { Err(PortError::permanent("NotConfigured", "no SSM client")) })
    }
}

mod admission_table;
pub use admission_table::{CopyRecords, Lease, Leases, NoLeases, NoRecords, WaitingChanges, WaitingList};
