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

/// A place's waiting jobs as its item holds them (`core::waiting` reads the entries), and when the place's
/// wake-up message is due (`None`: none was sent).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WaitingList {
    /// `(attribute name, value)` of each entry.
    pub entries: Vec<(String, String)>,
    pub wake_at: Option<f64>,
}

/// What the lease's holder changes in its place's waiting list as it gives the lease back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WaitingChanges {
    /// Entries to add (`(attribute name, value)`).
    pub park: Vec<(String, String)>,
    /// Entries to remove (attribute names): the jobs admitted or ended.
    pub unpark: Vec<String>,
    /// When the place's next wake-up message is due, when one was sent.
    pub wake_at: Option<f64>,
}

impl WaitingChanges {
    pub fn is_empty(&self) -> bool {
        self.park.is_empty() && self.unpark.is_empty() && self.wake_at.is_none()
    }
}

/// What [`Leases::acquire`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lease {
    /// The caller holds the lease now. `released_at`: when the previous holder gave it back (epoch seconds), if
    /// it did (`None`: never taken before, or its holder's time ran out): nobody admitted at the place since then.
    /// `waiting`: the place's waiting jobs, read by the same write.
    Taken { released_at: Option<f64>, waiting: WaitingList },
    /// Another invocation holds it until this time (epoch seconds).
    HeldUntil(f64),
}

/// Admission at a place one invocation at a time: a lease per place (its account and region) in a store every
/// invocation shares (a DynamoDB table in production, the world in the simulator), and the place's waiting jobs
/// in the same item, so that one admission sees them all. EC2 stays the truth about copies; the lease only orders
/// the invocations that read the place's in-flight count and start copies, and an entry is only a hint.
pub trait Leases: Send + Sync {
    /// Takes the lease `key` for `holder` until `until` (epoch seconds), when nobody holds it or its holder's time
    /// ran out at `now`: one conditional write, which answers the place's waiting list as it was. MUST be atomic:
    /// of two callers at once, at most one gets `Taken`.
    fn acquire<'a>(&'a self, key: &'a str, holder: &'a str, now: f64, until: f64) -> PortFuture<'a, Lease>;

    /// Gives the lease `key` back at `now` when `holder` still holds it (one conditional write; otherwise
    /// nothing): the next holder learns when.
    fn release<'a>(&'a self, key: &'a str, holder: &'a str, now: f64) -> PortFuture<'a, ()> {
        Box::pin(async move { self.release_with(key, holder, now, WaitingChanges::default()).await })
    }

    /// [`Self::release`], changing the waiting list in the same write. The changes are made even when the lease
    /// was no longer the caller's (then by a write of their own).
    fn release_with<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        now: f64,
        changes: WaitingChanges,
    ) -> PortFuture<'a, ()>;

    /// Adds `entries` to the waiting list of `key` at `now`, whoever holds the lease (one write per 100 entries):
    /// answers when the place's wake-up is due, as it was. An entry that is there already is replaced.
    fn park<'a>(&'a self, key: &'a str, entries: &'a [(String, String)], now: f64) -> PortFuture<'a, Option<f64>>;

    /// The waiting list of `key`, read consistently, without the lease (one read).
    fn waiting<'a>(&'a self, key: &'a str) -> PortFuture<'a, WaitingList>;

    /// Records that the wake-up message of `key` is due at `at` (after it was sent).
    fn set_wake<'a>(&'a self, key: &'a str, at: f64) -> PortFuture<'a, ()>;

    /// Whether waiting jobs can be kept here (`false`: they travel on the queue).
    fn keeps_waiting_jobs(&self) -> bool {
        true
    }
}

/// No lease store (ADMISSION_TABLE unset): every acquire succeeds as if the place had never been admitted at,
/// so concurrent invocations may race at a place and only AWS's own limit (`ResourceLimitExceeded`,
/// back-pressure) stops an overshoot. Nothing can be parked: waiting jobs travel on the queue.
pub struct NoLeases;

impl Leases for NoLeases {
    fn acquire<'a>(&'a self, _key: &'a str, _holder: &'a str, now: f64, _until: f64) -> PortFuture<'a, Lease> {
        Box::pin(async move { Ok(Lease::Taken { released_at: Some(now - 3600.0), waiting: WaitingList::default() }) })
    }

    fn release_with<'a>(&'a self, _k: &'a str, _h: &'a str, _now: f64, _c: WaitingChanges) -> PortFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn park<'a>(&'a self, _key: &'a str, _entries: &'a [(String, String)], _now: f64) -> PortFuture<'a, Option<f64>> {
        Box::pin(async { Err(PortError::permanent("NotConfigured", "no admission table to keep waiting jobs")) })
    }

    fn waiting<'a>(&'a self, _key: &'a str) -> PortFuture<'a, WaitingList> {
        Box::pin(async { Ok(WaitingList::default()) })
    }

    fn set_wake<'a>(&'a self, _key: &'a str, _at: f64) -> PortFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn keeps_waiting_jobs(&self) -> bool {
        false
    }
}

/// The function's own record of the copies CopyImage returned it, kept where only the function writes (the
/// stack's admission table in production). EC2's record of a copy's source (`SourceImageId`,
/// `SourceImageRegion`) cannot tell a copy from an image made with CreateImage from an instance of the source in
/// the source's own region; there (a target account's copy in the source region) this record decides.
pub trait CopyRecords: Send + Sync {
    /// Records that CopyImage returned `copy` at the place `place_key` (`ACCOUNT/REGION`). Recording what is
    /// recorded is success.
    fn record<'a>(&'a self, place_key: &'a str, copy: &'a ImageId) -> PortFuture<'a, ()>;

    /// Which of `ids` at the place `place_key` are recorded, in as few reads as the store allows.
    fn recorded<'a>(&'a self, place_key: &'a str, ids: &'a [ImageId]) -> PortFuture<'a, Vec<ImageId>>;
}

/// No record store (ADMISSION_TABLE unset): nothing is recorded, so no image in its source's own region is ever
/// taken for the product's copy. A deployment that copies there (TARGET_ACCOUNTS) needs the table; the
/// configuration refuses it otherwise.
pub struct NoRecords;

impl CopyRecords for NoRecords {
    fn record<'a>(&'a self, _place_key: &'a str, _copy: &'a ImageId) -> PortFuture<'a, ()> {
        Box::pin(async {
            Err(PortError::permanent(
                "NotConfigured",
                "no record store (ADMISSION_TABLE) for copies in the source region",
            ))
        })
    }

    fn recorded<'a>(&'a self, _place_key: &'a str, _ids: &'a [ImageId]) -> PortFuture<'a, Vec<ImageId>> {
        Box::pin(async { Ok(vec![]) })
    }
}
