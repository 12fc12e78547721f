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
#[path = "rules_tests.rs"]
mod tests;
