//! The Lambda function: wiring only.

use ami_replicator::aws::{ec2::AwsEc2Regions, imagebuilder::AwsImageBuilder, sqs::AwsQueue};
use ami_replicator::config::Config;
use ami_replicator::core::ids::AccountId;
use ami_replicator::entry;
use ami_replicator::service::Replicator;
use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env().inspect_err(|e| tracing::error!(error = %e, "start-up failed"))?;
    // One SDK configuration for every client; AWS_ENDPOINT_URL (if set) points them all at an emulator.
    let sdk = aws_config::defaults(BehaviorVersion::latest()).retry_config(RetryConfig::adaptive()).load().await;
    let queue = AwsQueue::new(aws_sdk_sqs::Client::new(&sdk), config.work_queue_url, config.dead_letter_queue_url);
    // Target accounts' roles are assumed on their first call, not here; no client makes a call at start-up.
    let ec2 = AwsEc2Regions::with_target_roles(sdk.clone(), &config.target_roles).await;
    let image_builder = AwsImageBuilder::new(aws_sdk_imagebuilder::Client::new(&sdk));
    let replicator = Replicator::new(Arc::new(config.settings), ec2, queue).with_image_builder(image_builder);
    let replicator = &replicator;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let account = AccountId::from_function_arn(&event.context.invoked_function_arn)?;
        Ok::<Value, Error>(entry::handle(replicator, event.payload, &account).await?)
    }))
    .await
}
