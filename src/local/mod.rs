//! A local stand-in for Lambda's SQS event source mapping, for the demo and the end-to-end tests: it receives
//! batches from the work queue, runs the real handler on them and deletes what the handler acknowledged.

use crate::core::ids::AccountId;
use crate::core::image::LaunchPermission;
use crate::entry;
use crate::ports::{Ec2Regions, ImageBuilder, Queue};
use crate::service::Replicator;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollSummary {
    pub invocations: u32,
    pub messages: u32,
    pub retried: u32,
    /// The longest invocation, in milliseconds (each had Lambda's deadline, [`FUNCTION_TIMEOUT_SECONDS`] ahead).
    pub longest_invocation_ms: u64,
}

/// The function's timeout in template.yaml: each invocation the drain makes gets Lambda's deadline from it.
pub const FUNCTION_TIMEOUT_SECONDS: f64 = 120.0;

/// Polls `queue_url` until it has been empty (nothing visible, in flight or delayed) or `deadline` passed,
/// running the production handler in this process on each batch.
pub async fn drain_queue<R: Ec2Regions, Q: Queue, B: ImageBuilder>(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    replicator: &Replicator<R, Q, B>,
    account: &AccountId,
    deadline: Duration,
) -> Result<PollSummary, String> {
    drain_queue_quiet(sqs, queue_url, replicator, account, deadline, deadline).await
}

/// As [`drain_queue`], done as well once nothing has come for `quiet`: what is then left on the queue is only
/// delayed further than that (a place's safety-net wake-up, `core::waiting::WAKE_SAFETY_SECONDS`).
pub async fn drain_queue_quiet<R: Ec2Regions, Q: Queue, B: ImageBuilder>(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    replicator: &Replicator<R, Q, B>,
    account: &AccountId,
    deadline: Duration,
    quiet: Duration,
) -> Result<PollSummary, String> {
    let invoke = |batch| async move {
        // As Lambda invokes it: with the deadline its timeout gives (template.yaml's Timeout).
        let deadline = Some(replicator.now() + FUNCTION_TIMEOUT_SECONDS);
        entry::handle_until(replicator, batch, account, deadline).await.map_err(|e| e.to_string())
    };
    drain(sqs, queue_url, deadline, quiet, invoke).await
}

/// As [`drain_queue`], with `invoke` running each batch (an SQS event) and answering the function's response:
/// the handler in this process, or the function under `cargo lambda` (tests/suite/cargo_lambda.rs).
pub async fn drain_queue_with<F, Fut>(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    deadline: Duration,
    invoke: F,
) -> Result<PollSummary, String>
where
    F: FnMut(Value) -> Fut,
    Fut: std::future::Future<Output = Result<Value, String>>,
{
    drain(sqs, queue_url, deadline, deadline, invoke).await
}

/// The drain: until the queue is empty, nothing came for `quiet`, or `deadline` passed (an error).
async fn drain<F, Fut>(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    deadline: Duration,
    quiet: Duration,
    mut invoke: F,
) -> Result<PollSummary, String>
where
    F: FnMut(Value) -> Fut,
    Fut: std::future::Future<Output = Result<Value, String>>,
{
    let started = Instant::now();
    let mut last_message = Instant::now();
    let mut summary = PollSummary::default();
    while started.elapsed() < deadline {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| format!("ReceiveMessage: {e:?}"))?;
        let messages = received.messages();
        if messages.is_empty() {
            if last_message.elapsed() >= quiet || queue_is_empty(sqs, queue_url).await? {
                return Ok(summary);
            }
            continue;
        }
        last_message = Instant::now();
        let records: Vec<Value> = messages
            .iter()
            .map(|m| json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(), "eventSource": "aws:sqs"}))
            .collect();
        let began = Instant::now();
        let response = invoke(json!({ "Records": records })).await?;
        summary.longest_invocation_ms = summary.longest_invocation_ms.max(began.elapsed().as_millis() as u64);
        let failed: Vec<&str> = response["batchItemFailures"]
            .as_array()
            .map(|a| a.iter().filter_map(|f| f["itemIdentifier"].as_str()).collect())
            .unwrap_or_default();
        summary.invocations += 1;
        summary.messages += messages.len() as u32;
        summary.retried += failed.len() as u32;
        for m in messages {
            if !failed.contains(&m.message_id().unwrap_or_default()) {
                if let Some(handle) = m.receipt_handle() {
                    sqs.delete_message()
                        .queue_url(queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .map_err(|e| format!("DeleteMessage: {e:?}"))?;
                }
            }
        }
    }
    Err(format!("the work queue was not drained within {deadline:?}"))
}

async fn queue_is_empty(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<bool, String> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(A::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| format!("GetQueueAttributes: {e:?}"))?;
    let total: u64 = attrs.attributes().map(|m| m.values().filter_map(|v| v.parse::<u64>().ok()).sum()).unwrap_or(0);
    Ok(total == 0)
}

/// Builds a source AMI the way a pipeline does (RunInstances, CreateImage with tags), shares it with
/// `share_with`, and returns its id. For the demo and the end-to-end tests on the emulator.
pub async fn seed_source_image(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
    tags: &[(&str, &str)],
    share_with: &[LaunchPermission],
) -> Result<String, String> {
    use aws_sdk_ec2::types::{LaunchPermissionModifications, ResourceType, Tag, TagSpecification};
    let run = ec2
        .run_instances()
        .image_id(EMULATOR_BASE_IMAGE)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .map_err(|e| format!("RunInstances: {e:?}"))?;
    let instance =
        run.instances().first().and_then(|i| i.instance_id()).ok_or("RunInstances: no instance")?.to_string();
    // An empty TagSpecification is refused by EC2 (and crashes moto): send one only with tags.
    let spec = (!tags.is_empty()).then(|| {
        TagSpecification::builder()
            .resource_type(ResourceType::Image)
            .set_tags(Some(tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect()))
            .build()
    });
    let image = ec2
        .create_image()
        .instance_id(&instance)
        .name(name)
        .description(format!("{name}, built by the pipeline"))
        .set_tag_specifications(spec.map(|s| vec![s]))
        .send()
        .await
        .map_err(|e| format!("CreateImage: {e:?}"))?;
    let image_id = image.image_id().ok_or("CreateImage: no image id")?.to_string();
    if !share_with.is_empty() {
        let add = LaunchPermissionModifications::builder()
            .set_add(Some(share_with.iter().map(crate::aws::convert::to_sdk_permission).collect()))
            .build();
        ec2.modify_image_attribute()
            .image_id(&image_id)
            .launch_permission(add)
            .send()
            .await
            .map_err(|e| format!("ModifyImageAttribute: {e:?}"))?;
    }
    ec2.terminate_instances().instance_ids(&instance).send().await.map_err(|e| format!("TerminateInstances: {e:?}"))?;
    Ok(image_id)
}

/// An image every region of the emulator has (moto's built-in catalogue), to launch the seed instance from.
pub const EMULATOR_BASE_IMAGE: &str = "ami-12c6146b";

/// Creates the work queue and its dead-letter queue (with a redrive policy), as template.yaml does, and
/// returns their URLs.
pub async fn create_queues(
    sqs: &aws_sdk_sqs::Client,
    prefix: &str,
    visibility_seconds: u32,
) -> Result<(String, String), String> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{prefix}-dlq"))
        .send()
        .await
        .map_err(|e| format!("CreateQueue: {e:?}"))?;
    let dlq_url = dlq.queue_url().ok_or("CreateQueue: no URL")?.to_string();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(A::QueueArn)
        .send()
        .await
        .map_err(|e| format!("GetQueueAttributes: {e:?}"))?
        .attributes()
        .and_then(|a| a.get(&A::QueueArn).cloned())
        .ok_or("GetQueueAttributes: no QueueArn")?;
    let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}).to_string();
    let work = sqs
        .create_queue()
        .queue_name(format!("{prefix}-work"))
        .attributes(A::VisibilityTimeout, visibility_seconds.to_string())
        .attributes(A::RedrivePolicy, redrive)
        .send()
        .await
        .map_err(|e| format!("CreateQueue: {e:?}"))?;
    Ok((work.queue_url().ok_or("CreateQueue: no URL")?.to_string(), dlq_url))
}

/// Creates the admission leases' table as template.yaml does (key `place`, on demand) and returns its name.
pub async fn create_admission_table(ddb: &aws_sdk_dynamodb::Client, name: &str) -> Result<String, String> {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    let attribute = AttributeDefinition::builder()
        .attribute_name("place")
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| e.to_string())?;
    let key = KeySchemaElement::builder()
        .attribute_name("place")
        .key_type(KeyType::Hash)
        .build()
        .map_err(|e| e.to_string())?;
    ddb.create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute)
        .key_schema(key)
        .send()
        .await
        .map_err(|e| format!("CreateTable: {e:?}"))?;
    Ok(name.to_string())
}

/// The function's record of its copies (target accounts' copies in the source region), in an admission table
/// made as template.yaml makes it, named `name`.
pub async fn copy_records(sdk: &aws_config::SdkConfig, name: &str) -> std::sync::Arc<dyn crate::ports::CopyRecords> {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let table = create_admission_table(&ddb, name).await.unwrap_or_else(|e| panic!("admission table: {e}"));
    std::sync::Arc::new(crate::aws::leases::AwsLeases::new(ddb, table))
}

/// An EC2 client for `region` from a shared SDK configuration.
pub fn ec2_client(sdk: &aws_config::SdkConfig, region: &str) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(sdk).region(aws_sdk_ec2::config::Region::new(region.to_string())).build(),
    )
}

/// The copies of `source` in `region` (images owned by this account carrying its provenance tag).
pub async fn copies_of(
    sdk: &aws_config::SdkConfig,
    region: &str,
    source: &str,
) -> Result<Vec<aws_sdk_ec2::types::Image>, String> {
    let filter = aws_sdk_ec2::types::Filter::builder()
        .name(format!("tag:{}", crate::core::provenance::SOURCE_IMAGE_TAG))
        .values(source)
        .build();
    let found = ec2_client(sdk, region)
        .describe_images()
        .owners("self")
        .filters(filter)
        .send()
        .await
        .map_err(|e| format!("DescribeImages: {e:?}"))?;
    Ok(found.images().to_vec())
}

/// The `failure_reason` of each message waiting in the dead-letter queue (up to 10).
pub async fn dead_letter_reasons(sqs: &aws_sdk_sqs::Client, dlq_url: &str) -> Result<Vec<String>, String> {
    let dead = sqs
        .receive_message()
        .queue_url(dlq_url)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .send()
        .await
        .map_err(|e| format!("ReceiveMessage: {e:?}"))?;
    Ok(dead
        .messages()
        .iter()
        .filter_map(|m| m.message_attributes()?.get("failure_reason")?.string_value().map(str::to_string))
        .collect())
}

/// SDK configuration acting in another account through its role (as the replicator's target clients do), for
/// reading what a target account owns in the tests and the demo.
pub async fn assumed_sdk_config(base: &aws_config::SdkConfig, role_arn: &str) -> aws_config::SdkConfig {
    let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
        .configure(base)
        .session_name("ami-replicator-check")
        .build()
        .await;
    base.clone()
        .into_builder()
        .credentials_provider(aws_sdk_ec2::config::SharedCredentialsProvider::new(provider))
        .build()
}

mod emulator;
pub use emulator::*;
