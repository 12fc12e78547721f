//! Adapters: the ports implemented with the AWS SDK. One method per SDK call; errors are translated into the
//! core's [`PortError`] by their AWS error code.

pub mod convert;
pub mod ec2;
pub mod imagebuilder;
pub mod launch_templates;
pub mod leases;
pub mod outputs;
pub mod places;
pub mod replication_rules;
pub mod sqs;

/// No single call outlives this, its retries included (the SDK's operation timeout): a call started before the
/// invocation's cut-off ([`crate::service::DEADLINE_MARGIN_SECONDS`] before Lambda's deadline) ends before it.
pub const OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The SDK's configuration every client is built from, in Lambda and over the emulator alike: the standard retry
/// mode (3 attempts, backoff capped at 5 s) and [`OPERATION_TIMEOUT`]. Not the adaptive mode: its client-side rate
/// limiter makes callers wait for tokens, unbounded by anything the function controls, which under a throttling
/// storm kept invocations past their deadline; throttling is the product's own to pace (jobs come back with
/// backoff), so a call gives up after its three attempts instead of waiting.
pub fn sdk_defaults() -> aws_config::ConfigLoader {
    let retry = aws_config::retry::RetryConfig::standard()
        .with_max_attempts(3)
        .with_max_backoff(std::time::Duration::from_secs(5));
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(OPERATION_TIMEOUT)
        .operation_attempt_timeout(std::time::Duration::from_secs(8))
        .connect_timeout(std::time::Duration::from_secs(3))
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).retry_config(retry).timeout_config(timeouts)
}

use crate::core::errors::PortError;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};

/// Translates an SDK error by its error code. Errors without a code (no response, timeout) are transient,
/// except a request the SDK could not even build, which is permanent.
pub(crate) fn port_error<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    operation: &str,
    err: SdkError<E, R>,
) -> PortError {
    if let Some(code) = err.code() {
        let message = err.message().unwrap_or("").to_string();
        return PortError::from_code(code, format!("{operation}: {message}"));
    }
    let detail = aws_smithy_types_display(&err);
    match err {
        SdkError::ConstructionFailure(_) => {
            PortError::permanent("ConstructionFailure", format!("{operation}: {detail}"))
        }
        SdkError::TimeoutError(_) => PortError::transient("Timeout", format!("{operation}: {detail}")),
        SdkError::DispatchFailure(_) => PortError::transient("DispatchFailure", format!("{operation}: {detail}")),
        _ => PortError::transient("ResponseError", format!("{operation}: {detail}")),
    }
}

/// The error and its sources on one line.
fn aws_smithy_types_display(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// When `err` failed because STS refused to let the replicator assume a target account's role (aws-config's
/// assume-role provider reports STS's own error as the source of the call's error): STS's code and message.
/// Passing STS faults (throttling, service errors) are not refusals: they stay transient.
pub(crate) fn assume_role_refusal(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    use aws_sdk_sts::operation::assume_role::AssumeRoleError;
    type StsError = aws_sdk_sts::error::SdkError<AssumeRoleError, aws_sdk_sts::config::http::HttpResponse>;
    let mut source = Some(err);
    while let Some(e) = source {
        if let Some(sts) = e.downcast_ref::<StsError>() {
            let code = sts.code()?;
            let refused = matches!(
                code,
                "AccessDenied" | "RegionDisabledException" | "InvalidClientTokenId" | "MalformedPolicyDocument"
            ) || crate::core::errors::classify(code) == crate::core::errors::ErrorClass::Permanent;
            return refused.then(|| format!("{code}: {}", sts.message().unwrap_or_default()));
        }
        source = e.source();
    }
    None
}

/// The function's record of its copies in a source's own region: the admission table when the configuration
/// names one (`ADMISSION_TABLE`), else none (no copy in a source's region is then ever taken for the product's).
pub fn copy_records(
    sdk: &aws_config::SdkConfig,
    admission_table: Option<&str>,
) -> std::sync::Arc<dyn crate::ports::CopyRecords> {
    match admission_table {
        Some(table) => std::sync::Arc::new(leases::AwsLeases::new(aws_sdk_dynamodb::Client::new(sdk), table)),
        None => std::sync::Arc::new(crate::ports::NoRecords),
    }
}

/// The production replicator: every port over the SDK, from one SDK configuration (AWS_ENDPOINT_URL, if set,
/// points every client at an emulator). No client makes a call here: target roles are assumed, and clients of
/// other regions made, on first use.
pub async fn replicator(
    sdk: &aws_config::SdkConfig,
    config: crate::config::Config,
) -> crate::service::Replicator<ec2::AwsEc2Regions, sqs::AwsQueue, imagebuilder::AwsImageBuilder> {
    let queue = sqs::AwsQueue::new(aws_sdk_sqs::Client::new(sdk), config.work_queue_url, config.dead_letter_queue_url)
        .with_max_message_bytes(config.settings.max_message_bytes);
    let ec2 = ec2::AwsEc2Regions::with_target_roles(sdk.clone(), &config.target_roles).await;
    let outputs = outputs::AwsOutputs::new(aws_sdk_eventbridge::Client::new(sdk), ec2.place_configs());
    let image_builder = imagebuilder::AwsImageBuilder::new(aws_sdk_imagebuilder::Client::new(sdk));
    let replicator = crate::service::Replicator::new(std::sync::Arc::new(config.settings), ec2, queue)
        .with_image_builder(image_builder)
        .with_outputs(std::sync::Arc::new(outputs));
    match config.admission_table {
        Some(table) => {
            let table = std::sync::Arc::new(leases::AwsLeases::new(aws_sdk_dynamodb::Client::new(sdk), table));
            replicator.with_leases(table.clone()).with_records(table)
        }
        None => {
            tracing::warn!(
                "ADMISSION_TABLE is not set: concurrent invocations may admit copies at one place at once (AWS's copy \
                 limit is then the only bound)"
            );
            replicator
        }
    }
}
