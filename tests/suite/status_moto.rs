//! The status command as an operator runs it (the built binary, with AWS_ENDPOINT_URL pointing at the emulator
//! and the function's environment variables): a table by default, JSON with --json, exit code 0 when complete
//! and 1 when something is missing.

use ami_replicator::config::Config;
use ami_replicator::core::ids::AccountId;
use ami_replicator::entry;
use ami_replicator::local::{create_queues, drain_queue, ec2_client, seed_source_image};
use ami_replicator::local::{Emulator, EMULATOR_ACCOUNT as ACCOUNT};
use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

fn status(emulator: &Emulator, env: &HashMap<&str, String>, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ami-replicator-ctl"))
        .arg("status")
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("AWS_ENDPOINT_URL", &emulator.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_a_table_or_json_with_the_exit_code_of_completeness() {
    let emulator = Emulator::start(0.5).unwrap();
    let sdk = emulator.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (work, dlq) = create_queues(&sqs, "status", 2).await.unwrap();
    let ec2 = ec2_client(&sdk, "us-east-1");
    let replicated = seed_source_image(&ec2, "golden-status", &[], &[]).await.unwrap();
    let never = seed_source_image(&ec2, "never-replicated", &[], &[]).await.unwrap();
    let env: HashMap<&str, String> = HashMap::from([
        ("TARGET_REGIONS", "eu-west-1,us-west-2".to_string()),
        ("WORK_QUEUE_URL", work.clone()),
        ("DEAD_LETTER_QUEUE_URL", dlq.clone()),
        ("COPY_POLL_SECONDS", "1".to_string()),
        ("SHARE_WITH_ACCOUNTS", "444455556666".to_string()),
    ]);
    let config = Config::from_lookup(&|k| env.get(k).cloned()).unwrap();
    let replicator = ami_replicator::aws::replicator(&sdk, config).await;
    let account = AccountId::parse(ACCOUNT).unwrap();
    let item = serde_json::json!({"image_id": replicated, "source_region": "us-east-1"});
    entry::handle(&replicator, item, &account).await.unwrap();
    drain_queue(&sqs, &work, &replicator, &account, Duration::from_secs(120)).await.unwrap();

    let (code, text) = status(&emulator, &env, &[&replicated, "--region", "us-east-1"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("eu-west-1") && text.contains("us-west-2") && text.ends_with("complete\n"), "{text}");
    assert_eq!(text.lines().filter(|l| l.ends_with(" complete")).count(), 2, "two places complete: {text}");

    let (code, text) = status(&emulator, &env, &[&never, "--region", "us-east-1", "--json"]);
    assert_eq!(code, 1, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["complete"], false);
    assert!(json["places"].as_array().unwrap().iter().all(|p| p["verdict"] == "missing"), "{json}");

    let (code, text) = status(&emulator, &env, &["not-an-image", "--region", "us-east-1"]);
    assert_eq!(code, 2, "{text}");
}
