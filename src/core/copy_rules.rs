//! The copy rules of the AMI documentation: what can be copied, with which encryption, and what an error
//! means for a given image. Pure.

use super::errors::PortError;
use super::ids::{AccountId, Place};
use super::image::ImageInfo;
use super::job::Job;
use std::collections::BTreeMap;

/// Encryption settings (ENCRYPT_COPIES, KMS_KEY_IDS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncryptionSettings {
    /// Encrypt every copy (with the region's key, or the default EBS key where none is configured).
    pub encrypt_copies: bool,
    /// A KMS key (id, alias or ARN) per place: `REGION=KEY` entries for this account, `ACCOUNT/REGION=KEY`
    /// entries for a target account.
    pub kms_keys: BTreeMap<Place, String>,
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
pub fn wanted_encryption(requested: Option<bool>, policy: &EncryptionSettings) -> Option<bool> {
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

/// The encryption parameters of a job's CopyImage. A target account's copy of an encrypted source is always
/// encrypted with that account's key for the region (its default EBS key when none is configured): the copy
/// must not depend on the source account's key.
pub fn copy_encryption(job: &Job, policy: &EncryptionSettings) -> CopyEncryption {
    let encrypt =
        wanted_encryption(job.encrypt, policy) == Some(true) || (job.account.is_some() && job.source_encrypted);
    if encrypt {
        CopyEncryption { encrypted: true, kms_key_id: policy.kms_keys.get(&job.place()).cloned() }
    } else {
        CopyEncryption::default()
    }
}

/// A human sentence for a permanent CopyImage error, from what the job knows of its source.
pub fn explain_copy_error(job: &Job, err: &PortError) -> String {
    let opt_in_refusal =
        matches!(err.code.as_str(), "AuthFailure" | "InvalidClientTokenId" | "UnrecognizedClientException")
            && job.destination.is_opt_in();
    if err.code == "OptInRequired" || opt_in_refusal {
        let account = job.account.as_ref().map_or("this account".to_string(), |a| format!("account {a}"));
        return format!(
            "{region} is an opt-in region that is not enabled for {account}: enable it (AWS console: Account, AWS \
             Regions; or aws account enable-region --region-name {region}), then send the work item again; the other \
             regions go on ({err})",
            region = job.destination
        );
    }
    let hint = match err.code.as_str() {
        "InvalidParameterValue" | "UnsupportedOperation" | "InvalidParameterCombination" if job.paravirtual => {
            Some(format!("paravirtual (PV) AMIs cannot be copied to {}, which does not support PV", job.destination))
        }
        "AccessDenied" | "UnauthorizedOperation" if job.instance_store => Some(format!(
            "{} is instance-store-backed: its copy goes through S3, and the role of {} needs the S3 grants of the \
             template's InstanceStoreSourceBundleArns (s3:ListAllMyBuckets; s3:GetObject on the source's bundle, whose \
             bucket must allow that account; s3:CreateBucket, s3:PutBucketOwnershipControls, s3:GetBucketAcl, s3:PutObject and s3:PutObjectAcl on \
             amis-for-ACCOUNT-in-REGION-*)",
            job.source_image,
            job.account.as_ref().map_or("this account".to_string(), |a| format!("account {a}"))
        )),
        "AssumeRoleDenied" => Some(format!(
            "the replicator cannot act in account {}: its role must trust the replicator's role (target-account.yaml) \
             and the replicator's role must be allowed sts:AssumeRole on it (template.yaml TargetRoleArns)",
            job.account.as_ref().map_or("?", |a| a.as_str())
        )),
        "InvalidSnapshot.NotFound" | "UnauthorizedOperation" | "AuthFailure" | "AccessDenied" | "InvalidRequest"
            if job.account.is_some() =>
        {
            let account = job.account.as_ref().map_or("?", |a| a.as_str());
            Some(format!(
                "account {account} cannot read the source {} in {}: grant, in the source account, launch permission on \
                 the image and createVolumePermission on each of its snapshots to {account} (the replicator does this \
                 itself for sources of its own account, unless ModifyImageAttribute/ModifySnapshotAttribute are \
                 denied){}; and allow the role in {account} ec2:CopyImage",
                job.source_image,
                job.source_region,
                if job.source_encrypted {
                    format!(
                        "; the source is encrypted: its KMS key policy must allow {account} kms:DescribeKey, \
                         kms:CreateGrant, kms:Decrypt and kms:ReEncrypt*, and {account} needs a key of {} \
                         (KMS_KEY_IDS {account}/{}=KEY, or its default EBS key)",
                        job.destination, job.destination
                    )
                } else {
                    String::new()
                }
            ))
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
        | "AccessDeniedException" => Some(match &job.account {
            None => format!(
                "the KMS key for {} is not usable: configure a key of that region in KMS_KEY_IDS (or none, for the \
                 default EBS key) and grant the function use of it",
                job.destination
            ),
            Some(a) => format!(
                "a KMS key is not usable by account {a} in {}: the source's key must be shared with {a} (its key \
                 policy), and {a}'s key for {} (KMS_KEY_IDS {a}/{}=KEY, or its default EBS key) must allow the role \
                 in {a} to use it through EC2",
                job.destination, job.destination, job.destination
            ),
        }),
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
#[path = "copy_rules_tests.rs"]
mod tests;
