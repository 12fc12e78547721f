//! The copy rules of the AMI documentation: what can be copied, with which encryption, and what an error
//! means for a given image. Pure.

use super::errors::PortError;
use super::ids::{AccountId, Region};
use super::image::ImageInfo;
use super::job::Job;
use std::collections::BTreeMap;

/// Encryption settings (ENCRYPT_COPIES, KMS_KEY_IDS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncryptionPolicy {
    /// Encrypt every copy (with the region's key, or the default EBS key where none is configured).
    pub encrypt_copies: bool,
    /// A KMS key (id, alias or ARN) per destination region.
    pub kms_keys: BTreeMap<Region, String>,
}

/// Encryption parameters of one CopyImage call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyEncryption {
    /// `Encrypted=true`. When false, every snapshot keeps its encryption state.
    pub encrypted: bool,
    /// The destination's key; `None` uses the default EBS key (or keeps the state when not encrypting).
    pub kms_key_id: Option<String>,
}

/// Whether copies of this request must be encrypted: the request's own wish (a work item's `"encrypted"`),
/// else the operator's ENCRYPT_COPIES. `None`: keep the source's state.
pub fn wanted_encryption(requested: Option<bool>, policy: &EncryptionPolicy) -> Option<bool> {
    requested.or(policy.encrypt_copies.then_some(true))
}

/// Why `image` can never be copied as asked, if it cannot. `wants_encrypted` as from [`wanted_encryption`].
pub fn cannot_copy(image: &ImageInfo, account: &AccountId, wants_encrypted: Option<bool>) -> Option<String> {
    let t = &image.traits;
    if t.marketplace && image.owner.as_ref() != Some(account) {
        return Some(format!(
            "{} is an AWS Marketplace AMI shared from another account; CopyImage does not support it. Workaround: \
             launch an instance from it in this account, then create an AMI from that instance (CreateImage), \
             which keeps the Marketplace codes",
            image.id
        ));
    }
    if t.encrypted && wants_encrypted == Some(false) {
        return Some(format!(
            "{} has encrypted snapshots and an unencrypted copy was requested: copying encrypted to unencrypted is \
             not supported",
            image.id
        ));
    }
    if t.instance_store && wants_encrypted == Some(true) {
        return Some(format!(
            "{} is instance-store-backed and encryption was requested: instance-store-backed AMIs cannot change \
             encryption on copy (exempt them with IMAGE_TAG_FILTER, or turn ENCRYPT_COPIES off)",
            image.id
        ));
    }
    None
}

/// The encryption parameters of a job's CopyImage.
pub fn copy_encryption(job: &Job, policy: &EncryptionPolicy) -> CopyEncryption {
    if wanted_encryption(job.encrypt, policy) == Some(true) {
        CopyEncryption { encrypted: true, kms_key_id: policy.kms_keys.get(&job.destination).cloned() }
    } else {
        CopyEncryption::default()
    }
}

/// A human sentence for a permanent CopyImage error, from what the job knows of its source.
pub fn explain_copy_error(job: &Job, err: &PortError) -> String {
    let hint = match err.code.as_str() {
        "InvalidParameterValue" | "UnsupportedOperation" | "InvalidParameterCombination" if job.paravirtual => {
            Some(format!("paravirtual (PV) AMIs cannot be copied to {}, which does not support PV", job.destination))
        }
        "InvalidSnapshot.NotFound" | "UnauthorizedOperation" | "AuthFailure" | "AccessDenied" => Some(
            "copying needs read access to the source's snapshots (and to their KMS keys when encrypted); for an AMI \
             shared by another account, ask its owner to share the snapshots and keys"
                .to_string(),
        ),
        "InvalidAMIID.Unavailable" | "InvalidAMIID.NotFound" => {
            Some(format!("the source {} is deregistered, disabled or no longer shared", job.source_image))
        }
        "DisabledException"
        | "KMSInvalidStateException"
        | "InvalidKeyUsageException"
        | "NotFoundException"
        | "AccessDeniedException" => Some(format!(
            "the KMS key for {} is not usable: configure a key of that region in KMS_KEY_IDS (or none, for the \
             default EBS key) and grant the function use of it",
            job.destination
        )),
        _ => None,
    };
    match hint {
        Some(h) => format!("{h} ({err})"),
        None => err.to_string(),
    }
}

/// Fills COPY_DESCRIPTION_TEMPLATE: `{image}`, `{region}`, `{name}` and `{description}` of the source.
pub fn describe_copy(template: Option<&str>, job: &Job) -> Option<String> {
    let Some(template) = template else { return job.description.clone() };
    let text = template
        .replace("{image}", job.source_image.as_str())
        .replace("{region}", job.source_region.as_str())
        .replace("{name}", job.name.as_deref().unwrap_or_default())
        .replace("{description}", job.description.as_deref().unwrap_or_default());
    // EC2 accepts at most 255 characters.
    Some(text.chars().take(255).collect())
}

/// Placeholders COPY_DESCRIPTION_TEMPLATE may use.
pub const DESCRIPTION_PLACEHOLDERS: &[&str] = &["{image}", "{region}", "{name}", "{description}"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::ImageId;
    use crate::core::image::{ImageState, ImageTraits};

    fn me() -> AccountId {
        AccountId::parse("123456789012").unwrap()
    }

    fn image(owner: &str, traits: ImageTraits) -> ImageInfo {
        ImageInfo {
            id: ImageId::parse("ami-0123456789abcdef0").unwrap(),
            owner: AccountId::parse(owner).ok(),
            name: Some("golden".into()),
            description: Some("built".into()),
            state: ImageState::Available,
            tags: vec![],
            size_gib: 8,
            traits,
        }
    }

    fn job() -> Job {
        Job::new(
            ImageId::parse("ami-0123456789abcdef0").unwrap(),
            Region::parse("us-east-1").unwrap(),
            Region::parse("eu-west-1").unwrap(),
            Some("golden".into()),
            Some("built by CI".into()),
        )
    }

    #[test]
    fn encrypted_to_unencrypted_is_refused() {
        let img = image("123456789012", ImageTraits { encrypted: true, ..Default::default() });
        let why = cannot_copy(&img, &me(), Some(false)).unwrap();
        assert!(why.contains("ami-0123456789abcdef0") && why.contains("encrypted to unencrypted"), "{why}");
        assert_eq!(cannot_copy(&img, &me(), None), None, "keeping the state is fine");
        assert_eq!(cannot_copy(&img, &me(), Some(true)), None, "re-keying is fine");
    }

    #[test]
    fn instance_store_cannot_be_encrypted_on_copy() {
        let img = image("123456789012", ImageTraits { instance_store: true, ..Default::default() });
        assert!(cannot_copy(&img, &me(), Some(true)).unwrap().contains("IMAGE_TAG_FILTER"));
        assert_eq!(cannot_copy(&img, &me(), None), None);
    }

    #[test]
    fn shared_marketplace_images_name_the_workaround() {
        let img = image("999988887777", ImageTraits { marketplace: true, ..Default::default() });
        assert!(cannot_copy(&img, &me(), None).unwrap().contains("CreateImage"));
        let own = image("123456789012", ImageTraits { marketplace: true, ..Default::default() });
        assert_eq!(cannot_copy(&own, &me(), None), None, "own images derived from Marketplace copy fine");
    }

    #[test]
    fn encryption_uses_the_destination_key_or_the_default() {
        let mut policy = EncryptionPolicy::default();
        assert_eq!(copy_encryption(&job(), &policy), CopyEncryption::default());
        policy.encrypt_copies = true;
        assert_eq!(copy_encryption(&job(), &policy), CopyEncryption { encrypted: true, kms_key_id: None });
        policy.kms_keys.insert(Region::parse("eu-west-1").unwrap(), "alias/ami-copies".into());
        assert_eq!(copy_encryption(&job(), &policy).kms_key_id.as_deref(), Some("alias/ami-copies"));
        let mut j = job();
        j.encrypt = Some(false);
        assert!(!copy_encryption(&j, &policy).encrypted, "a work item may keep the state");
    }

    #[test]
    fn errors_get_a_human_sentence() {
        let mut j = job();
        j.paravirtual = true;
        let e = PortError::from_code("InvalidParameterValue", "Virtualization type not supported");
        let text = explain_copy_error(&j, &e);
        assert!(text.contains("paravirtual") && text.contains("eu-west-1") && text.contains("InvalidParameterValue"));
        let e = PortError::from_code("InvalidSnapshot.NotFound", "snap-1");
        assert!(explain_copy_error(&job(), &e).contains("read access"));
        let e = PortError::from_code("DisabledException", "key disabled");
        assert!(explain_copy_error(&job(), &e).contains("KMS_KEY_IDS"));
        let e = PortError::from_code("SomethingElse", "x");
        assert_eq!(explain_copy_error(&job(), &e), e.to_string());
    }

    #[test]
    fn description_template() {
        assert_eq!(describe_copy(None, &job()).as_deref(), Some("built by CI"));
        let d = describe_copy(Some("{description} (copied from {image} in {region})"), &job()).unwrap();
        assert_eq!(d, "built by CI (copied from ami-0123456789abcdef0 in us-east-1)");
    }
}
