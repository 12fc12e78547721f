//! Unit tests of `rules`.

use super::*;
use crate::core::ids::ImageId;
use crate::core::ids::{Place, Region};
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
        snapshots: vec![],
        created: None,
        origin: None,
        last_launched: None,
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
    let mut policy = EncryptionSettings::default();
    assert_eq!(copy_encryption(&job(), &policy), CopyEncryption::default());
    policy.encrypt_copies = true;
    assert_eq!(copy_encryption(&job(), &policy), CopyEncryption { encrypted: true, kms_key_id: None });
    policy.kms_keys.insert(Place::home(Region::parse("eu-west-1").unwrap()), "alias/ami-copies".into());
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

#[test]
fn target_accounts_copies_of_encrypted_sources_are_always_encrypted_with_their_own_key() {
    let b = crate::core::ids::AccountId::parse("222222222222").unwrap();
    let mut policy = EncryptionSettings::default();
    policy.kms_keys.insert(Place::home(Region::parse("eu-west-1").unwrap()), "alias/home".into());
    let mut job = Job::new(
        crate::core::ids::ImageId::parse("ami-0123456789abcdef0").unwrap(),
        Region::parse("us-east-1").unwrap(),
        Region::parse("eu-west-1").unwrap(),
        None,
        None,
    );
    job.source_encrypted = true;
    assert_eq!(copy_encryption(&job, &policy), CopyEncryption::default(), "this account keeps the state");
    job.account = Some(b.clone());
    assert_eq!(
        copy_encryption(&job, &policy),
        CopyEncryption { encrypted: true, kms_key_id: None },
        "the target's default EBS key, never this account's key"
    );
    policy.kms_keys.insert(Place::new(Some(b), Region::parse("eu-west-1").unwrap()), "alias/b".into());
    assert_eq!(copy_encryption(&job, &policy).kms_key_id.as_deref(), Some("alias/b"));
    job.source_encrypted = false;
    assert!(!copy_encryption(&job, &policy).encrypted, "unencrypted sources follow ENCRYPT_COPIES");
}
