//! `ami-replicator-status IMAGE_ID --region REGION [--json] [--function NAME]`: where is my AMI? Lists, per
//! account and region the configuration wants, the copy the product made (found by its provenance tag), its
//! state, age and encryption, its launch permissions against what the configuration wants, and the dead letters
//! that concern the image (read without consuming them). Runs with the operator's own AWS credentials; the
//! configuration comes from the same environment variables as the function's, or from the deployed function
//! (`--function NAME`). Exit code 0 when complete, 1 when something is missing or failed, 2 on a usage or
//! configuration error. Not part of the Lambda zip.

use ami_replicator::aws::rules::config_from;
use ami_replicator::aws::{ec2::AwsEc2Regions, sqs::AwsQueue};
use ami_replicator::core::ids::{AccountId, ImageId, Region};
use ami_replicator::core::status::table;
use std::collections::HashMap;
use std::process::ExitCode;

const USAGE: &str = "usage: ami-replicator-status IMAGE_ID --region REGION [--json] [--function NAME]";

struct Args {
    image: ImageId,
    region: Region,
    json: bool,
    function: Option<String>,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let (mut image, mut region, mut json, mut function) = (None, None, false, None);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--region" => region = Some(it.next().ok_or("--region needs a value")?.clone()),
            "--function" => function = Some(it.next().ok_or("--function needs a value")?.clone()),
            "-h" | "--help" => return Err(USAGE.into()),
            other if other.starts_with('-') => return Err(format!("unknown option {other}\n{USAGE}")),
            other => image = Some(other.to_string()),
        }
    }
    let image = ImageId::parse(&image.ok_or(USAGE)?).map_err(|e| e.to_string())?;
    let region = Region::parse(&region.ok_or("--region is required")?).map_err(|e| e.to_string())?;
    Ok(Args { image, region, json, function })
}

/// The function's environment variables, from its deployed configuration.
async fn function_environment(sdk: &aws_config::SdkConfig, name: &str) -> Result<HashMap<String, String>, String> {
    let out = aws_sdk_lambda::Client::new(sdk).get_function_configuration().function_name(name).send().await.map_err(
        |e| format!("reading the configuration of {name}: {}", aws_sdk_lambda::error::DisplayErrorContext(e)),
    )?;
    Ok(out.environment().and_then(|e| e.variables()).cloned().unwrap_or_default())
}

async fn run(args: Args) -> Result<bool, String> {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let config = match &args.function {
        Some(name) => {
            let env = function_environment(&sdk, name).await?;
            config_from(&sdk, &|k| env.get(k).cloned()).await
        }
        None => config_from(&sdk, &|k| std::env::var(k).ok()).await,
    }?;
    let identity =
        aws_sdk_sts::Client::new(&sdk).get_caller_identity().send().await.map_err(|e| {
            format!("who am I (sts get-caller-identity): {}", aws_sdk_sts::error::DisplayErrorContext(e))
        })?;
    let home = AccountId::parse(identity.account().unwrap_or_default()).map_err(|e| e.to_string())?;
    let ec2 = AwsEc2Regions::with_target_roles(sdk.clone(), &config.target_roles).await;
    let queue = AwsQueue::new(aws_sdk_sqs::Client::new(&sdk), config.work_queue_url, config.dead_letter_queue_url);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let report =
        ami_replicator::status::status(&ec2, &queue, &config.settings, &home, &args.image, &args.region, now).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
    } else {
        print!("{}", table(&report));
    }
    Ok(report.complete)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ami-replicator-status: {e}");
            ExitCode::from(2)
        }
    }
}
