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
