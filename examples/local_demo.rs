//! Runs the replicator end to end on the local AWS emulator (moto + scripts/emulator.py): a pipeline builds an
//! AMI in us-east-1 with tags and launch permissions, EventBridge delivers events/ami-available.json, and the
//! production handler replicates it to three regions through the SQS work queue, as Lambda's event source
//! mapping would drive it. Prints every copy with its tags and launch permissions, and the API calls made.
//!
//! `scripts/demo.sh` installs the emulator and runs this.

use ami_replicator::config::Config;
use ami_replicator::core::ids::{AccountId, OrganizationArn};
use ami_replicator::core::image::LaunchPermission;
use ami_replicator::entry;
use ami_replicator::local::{
    copies_of, create_admission_table, create_queues, drain_queue, ec2_client, seed_source_image, Emulator,
    EMULATOR_ACCOUNT,
};
use aws_sdk_ec2::types::ImageAttributeName;
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const TARGET_REGIONS: &str = "eu-west-1,ap-southeast-2,us-west-2";

#[tokio::main]
async fn main() -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::io::stdout)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let started = Instant::now();
    let emulator = Emulator::start(3.0)?;
    let sdk = emulator.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (work, dlq) = create_queues(&sqs, "ami-replicator", 5).await?;
    let table = create_admission_table(&aws_sdk_dynamodb::Client::new(&sdk), "ami-replicator-admission").await?;

    let org = OrganizationArn::parse("arn:aws:organizations::123456789012:organization/o-abc123def4")
        .map_err(|e| e.to_string())?;
    let partner = AccountId::parse("111122223333").map_err(|e| e.to_string())?;
    let ec2_east = ec2_client(&sdk, "us-east-1");
    let source = seed_source_image(
        &ec2_east,
        "golden-demo-2026.11.27",
        &[("team", "platform"), ("os", "al2023")],
        &[LaunchPermission::Account(partner), LaunchPermission::Organization(org)],
    )
    .await?;
    eprintln!(
        "A pipeline built {source} in us-east-1 (tags team=platform, os=al2023; launch permissions for 111122223333 \
         and an organization).\nEventBridge delivers its \"available\" event; the function copies it to {TARGET_REGIONS} \
         through the SQS work queue, and shares each copy as the source is shared, plus 444455556666.\n"
    );

    let env: HashMap<&str, String> = HashMap::from([
        ("TARGET_REGIONS", TARGET_REGIONS.to_string()),
        ("WORK_QUEUE_URL", work.clone()),
        ("DEAD_LETTER_QUEUE_URL", dlq.clone()),
        ("ADMISSION_TABLE", table),
        ("COPY_POLL_SECONDS", "2".to_string()),
        ("SHARE_WITH_ACCOUNTS", "444455556666".to_string()),
    ]);
    let config = Config::from_lookup(&|k| env.get(k).cloned()).map_err(|e| e.to_string())?;
    let status_config = config.clone();
    let replicator = ami_replicator::aws::replicator(&sdk, config).await;
    let account = AccountId::parse(EMULATOR_ACCOUNT).map_err(|e| e.to_string())?;

    let mut event: Value =
        serde_json::from_str(include_str!("../events/ami-available.json")).map_err(|e| e.to_string())?;
    event["detail"]["ImageId"] = Value::String(source.clone());
    entry::handle(&replicator, event, &account).await.map_err(|e| e.to_string())?;
    let summary = drain_queue(&sqs, &work, &replicator, &account, Duration::from_secs(120)).await?;

    let mut rows = vec![format!("{:<16} {:<23} {:<10} {:<40} launch permissions", "region", "copy", "state", "tags")];
    let mut copies = 0;
    for region in TARGET_REGIONS.split(',') {
        let ec2 = ec2_client(&sdk, region);
        for image in &copies_of(&sdk, region, &source).await? {
            copies += 1;
            let id = image.image_id().unwrap_or_default();
            let tags: Vec<String> = image
                .tags()
                .iter()
                .map(|t| format!("{}={}", t.key().unwrap_or_default(), t.value().unwrap_or_default()))
                .collect();
            let perms = ec2
                .describe_image_attribute()
                .image_id(id)
                .attribute(ImageAttributeName::LaunchPermission)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            let grants: Vec<&str> = perms
                .launch_permissions()
                .iter()
                .filter_map(|p| p.user_id().or(p.organization_arn()).or(p.organizational_unit_arn()))
                .collect();
            let state = image.state().map(|s| s.as_str()).unwrap_or("?");
            rows.push(format!("{region:<16} {id:<23} {state:<10} {:<40} {}", tags.join(","), grants.join(",")));
        }
    }
    let calls = emulator.calls()?;
    let mut by_action: Vec<(&String, u64)> =
        calls.as_object().map(|m| m.iter().filter_map(|(k, v)| Some((k, v.as_u64()?))).collect()).unwrap_or_default();
    by_action.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let total: u64 = by_action.iter().map(|(_, n)| n).sum();
    let listed: Vec<String> = by_action.iter().map(|(action, n)| format!("{action} {n}")).collect();
    eprintln!("What happened");
    eprintln!(
        "  {copies} copies in {:.1} s: 1 direct invocation, then {} from the work queue ({} messages, {} retried)",
        started.elapsed().as_secs_f64(),
        summary.invocations,
        summary.messages,
        summary.retried
    );
    eprintln!("  {total} API calls to the emulator (the demo's own setup and checks included): {}", listed.join(", "));
    eprintln!("\nThe copies\n  {}", rows.join("\n  "));
    // What `ami-replicator-ctl status IMAGE --region us-east-1` prints for the source (the same code).
    let status_queue = ami_replicator::aws::sqs::AwsQueue::new(
        sqs.clone(),
        status_config.work_queue_url.clone(),
        status_config.dead_letter_queue_url.clone(),
    );
    let status_ec2 = ami_replicator::aws::ec2::AwsEc2Regions::new(sdk.clone());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let source_id = ami_replicator::core::ids::ImageId::parse(&source).map_err(|e| e.to_string())?;
    let us_east = ami_replicator::core::ids::Region::parse("us-east-1").map_err(|e| e.to_string())?;
    let records = ami_replicator::aws::copy_records(&sdk, status_config.admission_table.as_deref());
    let report = ami_replicator::status::status(
        &status_ec2,
        &status_queue,
        &records,
        &status_config.settings,
        &account,
        &source_id,
        &us_east,
        now,
    )
    .await;
    eprintln!(
        "\nWhat `ami-replicator-ctl status {source} --region us-east-1` answers\n{}",
        ami_replicator::core::status::table(&report)
    );
    if copies != 3 {
        return Err(format!("expected 3 copies, found {copies}"));
    }
    if !report.complete {
        return Err("the status says the replication is not complete".into());
    }
    Ok(())
}
