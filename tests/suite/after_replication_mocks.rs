//! The adapter's calls for what happens to copies after replication (issue 19), against aws-smithy-mocks: the
//! exact request of EnableImageDeregistrationProtection (moto has no deregistration protection), and
//! DescribeImages' DeregistrationProtection read back.

use ami_replicator::aws::ec2::AwsEc2;
use ami_replicator::core::ids::ImageId;
use ami_replicator::core::protection::Protection;
use ami_replicator::ports::Ec2;
use aws_smithy_mocks::{mock, mock_client};

#[tokio::test]
async fn protection_is_enabled_with_the_sources_cooldown() {
    let rule = mock!(aws_sdk_ec2::Client::enable_image_deregistration_protection)
        .match_requests(|r| r.image_id() == Some("ami-11111111") && r.with_cooldown() == Some(true))
        .then_output(|| {
            aws_sdk_ec2::operation::enable_image_deregistration_protection::EnableImageDeregistrationProtectionOutput::builder()
                .r#return("true")
                .build()
        });
    let client = mock_client!(aws_sdk_ec2, [&rule]);
    AwsEc2::new(client).enable_deregistration_protection(&ImageId::parse("ami-11111111").unwrap(), true).await.unwrap();
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn describe_images_reads_the_protection() {
    let rule = mock!(aws_sdk_ec2::Client::describe_images).then_output(|| {
        aws_sdk_ec2::operation::describe_images::DescribeImagesOutput::builder()
            .images(
                aws_sdk_ec2::types::Image::builder()
                    .image_id("ami-11111111")
                    .owner_id("123456789012")
                    .state(aws_sdk_ec2::types::ImageState::Available)
                    .deregistration_protection("enabled-with-cooldown")
                    .build(),
            )
            .build()
    });
    let client = mock_client!(aws_sdk_ec2, [&rule]);
    let image = AwsEc2::new(client).describe_image(&ImageId::parse("ami-11111111").unwrap()).await.unwrap().unwrap();
    assert_eq!(image.traits.protection, Protection::On { cooldown: true });
}

#[tokio::test]
async fn a_launch_template_version_is_made_from_the_latest_with_only_the_image_and_a_token() {
    let rule = mock!(aws_sdk_ec2::Client::create_launch_template_version)
        .match_requests(|r| {
            r.launch_template_id() == Some("lt-0123456789abcdef0")
                && r.launch_template_name().is_none()
                && r.source_version() == Some("7")
                && r.client_token() == Some("token-of-template-and-copy")
                && r.launch_template_data().and_then(|d| d.image_id()) == Some("ami-11111111")
                && r.launch_template_data().and_then(|d| d.instance_type()).is_none()
        })
        .then_output(|| {
            aws_sdk_ec2::operation::create_launch_template_version::CreateLaunchTemplateVersionOutput::builder()
                .launch_template_version(aws_sdk_ec2::types::LaunchTemplateVersion::builder().version_number(8).build())
                .build()
        });
    let by_name = mock!(aws_sdk_ec2::Client::modify_launch_template)
        .match_requests(|r| r.launch_template_name() == Some("web") && r.default_version() == Some("8"))
        .then_output(|| aws_sdk_ec2::operation::modify_launch_template::ModifyLaunchTemplateOutput::builder().build());
    let client = mock_client!(aws_sdk_ec2, [&rule, &by_name]);
    let ec2 = AwsEc2::new(client);
    let image = ImageId::parse("ami-11111111").unwrap();
    let version = ec2
        .create_launch_template_version("lt-0123456789abcdef0", 7, &image, "token-of-template-and-copy")
        .await
        .unwrap();
    assert_eq!(version, 8);
    ec2.set_default_launch_template_version("web", 8).await.unwrap();
    assert_eq!((rule.num_calls(), by_name.num_calls()), (1, 1));
}

#[tokio::test]
async fn copies_are_disabled_and_enabled_by_id_and_found_when_disabled() {
    let disable = mock!(aws_sdk_ec2::Client::disable_image)
        .match_requests(|r| r.image_id() == Some("ami-11111111"))
        .then_output(|| aws_sdk_ec2::operation::disable_image::DisableImageOutput::builder().r#return(true).build());
    let enable = mock!(aws_sdk_ec2::Client::enable_image)
        .match_requests(|r| r.image_id() == Some("ami-11111111"))
        .then_error(|| {
            aws_sdk_ec2::operation::enable_image::EnableImageError::generic(
                aws_smithy_types::error::ErrorMetadata::builder().code("RequestLimitExceeded").build(),
            )
        });
    // The provenance lookup includes disabled images: a disabled copy is still a copy, never made again.
    let lookup = mock!(aws_sdk_ec2::Client::describe_images)
        .match_requests(|r| r.include_disabled() == Some(true) && r.owners() == ["self"])
        .then_output(|| aws_sdk_ec2::operation::describe_images::DescribeImagesOutput::builder().build());
    let client = mock_client!(aws_sdk_ec2, [&disable, &enable, &lookup]);
    let ec2 = AwsEc2::new(client);
    let copy = ImageId::parse("ami-11111111").unwrap();
    ec2.disable_image(&copy).await.unwrap();
    let e = ec2.enable_image(&copy).await.unwrap_err();
    assert_eq!(e.class, ami_replicator::core::errors::ErrorClass::Throttled, "{e}");
    ec2.find_copies(std::slice::from_ref(&copy)).await.unwrap();
    // Throttling is retried by the SDK (3 attempts) before the port's error class sends the job back with backoff.
    assert_eq!((disable.num_calls(), enable.num_calls(), lookup.num_calls()), (1, 3, 1));
}

#[tokio::test]
async fn the_sweep_lists_available_and_disabled_sources_in_one_listing() {
    let rule = mock!(aws_sdk_ec2::Client::describe_images)
        .match_requests(|r| {
            let state = r.filters().iter().find(|f| f.name() == Some("state"));
            state.is_some_and(|f| f.values() == ["available", "disabled"]) && r.include_disabled() == Some(true)
        })
        .then_output(|| aws_sdk_ec2::operation::describe_images::DescribeImagesOutput::builder().build());
    let client = mock_client!(aws_sdk_ec2, [&rule]);
    let owner = ami_replicator::core::ids::AccountId::parse("123456789012").unwrap();
    AwsEc2::new(client).source_images_of(&[owner]).await.unwrap();
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn describe_images_reads_where_ec2_records_an_image_was_copied_from() {
    // Issue 27: SourceImageId and SourceImageRegion, set by CopyImage and writable by nobody, are the image's
    // origin; an image without them (registered, or an older AMI) has none.
    let rule = mock!(aws_sdk_ec2::Client::describe_images).then_output(|| {
        let image = |id: &str| {
            aws_sdk_ec2::types::Image::builder()
                .image_id(id)
                .owner_id("123456789012")
                .state(aws_sdk_ec2::types::ImageState::Available)
        };
        aws_sdk_ec2::operation::describe_images::DescribeImagesOutput::builder()
            .images(
                image("ami-11111111")
                    .source_image_id("ami-0123456789abcdef0")
                    .source_image_region("us-east-1")
                    .last_launched_time("2026-12-01T10:00:00Z")
                    .build(),
            )
            .images(image("ami-22222222").build())
            .build()
    });
    let client = mock_client!(aws_sdk_ec2, [&rule]);
    let ids = [ImageId::parse("ami-11111111").unwrap(), ImageId::parse("ami-22222222").unwrap()];
    let images = AwsEc2::new(client).describe_own_images(&ids).await.unwrap();
    let origin = images[0].origin.as_ref().unwrap();
    assert_eq!((origin.image.as_str(), origin.region.as_str()), ("ami-0123456789abcdef0", "us-east-1"));
    assert!(!origin.recorded, "the function's record is the shell's to read, never EC2's");
    assert_eq!(images[1].origin, None);
    // Issue 28: LastLaunchedTime (every account's launches) is read in the same call.
    assert_eq!(images[0].last_launched.as_deref(), Some("2026-12-01T10:00:00Z"));
    assert_eq!(images[1].last_launched, None);
}
