//! The Lambda function: wiring only.

#![recursion_limit = "256"]

use ami_replicator::core::ids::AccountId;
use ami_replicator::entry;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // One SDK configuration for every client; AWS_ENDPOINT_URL (if set) points them all at an emulator.
    let sdk = ami_replicator::aws::sdk_defaults().load().await;
    // The only call at start-up: REPLICATION_RULES=ssm:/path reads its document (one GetParameter).
    let config = ami_replicator::aws::replication_rules::config_from_env(&sdk)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "start-up failed"))?;
    // Target accounts' roles are assumed on their first call, not here; no client makes a call at start-up.
    let replicator = ami_replicator::aws::replicator(&sdk, config).await;
    let replicator = &replicator;
    // The account comes from the invocation's function ARN. Where an emulator sends a placeholder there (cargo
    // lambda's runtime emulator does), STS says whose credentials these are: asked once, on the first such
    // invocation (never at start-up; GetCallerIdentity needs no permission), and the answer kept.
    let sts = aws_sdk_sts::Client::new(&sdk);
    let (sts, asked) = (&sts, &tokio::sync::OnceCell::<AccountId>::new());
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let account = match AccountId::from_function_arn(&event.context.invoked_function_arn) {
            Ok(account) => account,
            Err(placeholder) => asked
                .get_or_try_init(|| async {
                    let who = sts.get_caller_identity().send().await.map_err(|e| {
                        let e = aws_sdk_sts::error::DisplayErrorContext(e);
                        format!("{placeholder}, and STS could not say whose credentials these are: {e}")
                    })?;
                    AccountId::parse(who.account().unwrap_or_default()).map_err(|e| e.to_string())
                })
                .await?
                .clone(),
        };
        // Lambda's deadline (epoch milliseconds): no new work starts within a margin of it.
        let deadline = Some(event.context.deadline as f64 / 1000.0);
        Ok::<Value, Error>(entry::handle_until(replicator, event.payload, &account, deadline).await?)
    }))
    .await
}
