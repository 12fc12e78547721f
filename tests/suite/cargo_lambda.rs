//! The function as its users run it on their machines: the real cargo-lambda (pinned in
//! scripts/requirements-tools.txt, installed by the test command) serves Lambda's runtime API, the function's own
//! binary runs under it unchanged, configured by its environment as in Lambda and pointed at the emulator, and
//! `cargo lambda invoke` sends it every sample in events/. These are the commands of "Local invocation" in
//! docs/operations.md; the work queue is drained by invoking the function with each batch, as the event source
//! mapping would.

use ami_replicator::local::{
    copies_of, create_queues, dead_letter_reasons, drain_queue_with, ec2_client, register_image_build,
    seed_source_image, Emulator, EMULATOR_ACCOUNT,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SAMPLE_IMAGE: &str = "ami-0123456789abcdef0";
const SAMPLE_BUILD: &str = "arn:aws:imagebuilder:us-east-1:123456789012:image/golden/1.0.0/1";
const TARGET_REGIONS: [&str; 3] = ["eu-west-1", "us-west-2", "ap-southeast-2"];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// cargo-lambda as scripts/setup-tools.sh installs it.
fn cargo_lambda() -> PathBuf {
    let tool = manifest_dir().join(".tools/bin/cargo-lambda");
    assert!(tool.exists(), "{} is missing: scripts/test.sh installs it (scripts/setup-tools.sh)", tool.display());
    tool
}

/// `cargo lambda watch --only-lambda-apis` on a free loopback port, and the function's binary running under it;
/// both stopped when dropped. Their output goes to files in `dir`, shown when an invocation fails.
struct LocalLambda {
    watch: Child,
    function: Child,
    port: u16,
    dir: PathBuf,
    payloads: AtomicUsize,
}

impl LocalLambda {
    fn start(function_env: &[(&str, String)]) -> LocalLambda {
        let dir = std::env::temp_dir().join(format!("ami-replicator-cargo-lambda-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = |name: &str| Stdio::from(std::fs::File::create(dir.join(name)).unwrap());
        let watch = Command::new(cargo_lambda())
            .args(["lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(port.to_string())
            .current_dir(manifest_dir())
            .stdout(log("watch.out"))
            .stderr(log("watch.err"))
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "cargo lambda watch did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        // What `cargo lambda watch --only-lambda-apis` says the function needs, and the function's configuration.
        let function = Command::new(env!("CARGO_BIN_EXE_ami-replicator"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "4096")
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt"))
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .envs(function_env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(log("function.out"))
            .stderr(log("function.err"))
            .spawn()
            .unwrap();
        LocalLambda { watch, function, port, dir, payloads: AtomicUsize::new(0) }
    }

    /// `cargo lambda invoke --data-file` with `payload`: the function's answer, or why the invocation failed.
    async fn invoke(&self, payload: Value) -> Result<Value, String> {
        let n = self.payloads.fetch_add(1, Ordering::Relaxed);
        let file = self.dir.join(format!("payload-{n}.json"));
        std::fs::write(&file, payload.to_string()).unwrap();
        self.invoke_file(&file).await
    }

    async fn invoke_file(&self, file: &Path) -> Result<Value, String> {
        let out = tokio::process::Command::new(cargo_lambda())
            .args(["lambda", "invoke", "--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(self.port.to_string())
            .arg("--data-file")
            .arg(file)
            .args(["--output-format", "json"])
            .current_dir(manifest_dir())
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "cargo lambda invoke {}: {}{}\n{}",
                file.display(),
                stdout,
                String::from_utf8_lossy(&out.stderr),
                self.logs()
            ));
        }
        serde_json::from_str(&stdout).map_err(|e| format!("the answer {stdout:?} is not JSON ({e})\n{}", self.logs()))
    }

    fn logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!(
            "function stdout:\n{}\nfunction stderr:\n{}\nwatch:\n{}",
            read("function.out"),
            read("function.err"),
            read("watch.err")
        )
    }
}

impl Drop for LocalLambda {
    fn drop(&mut self) {
        let _ = self.function.kill();
        let _ = self.watch.kill();
        let _ = self.function.wait();
        let _ = self.watch.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sample(name: &str, image: &str) -> Value {
    let text = std::fs::read_to_string(manifest_dir().join("events").join(name)).unwrap();
    serde_json::from_str(&text.replace(SAMPLE_IMAGE, image)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_runs_under_cargo_lambda_and_answers_every_sample_in_events() {
    let emulator = Emulator::start(0.0).unwrap();
    let sdk = emulator.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (work, dlq) = create_queues(&sqs, "cargo-lambda", 2).await.unwrap();
    let lambda = LocalLambda::start(&[
        ("AWS_ENDPOINT_URL", emulator.endpoint.clone()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("TARGET_REGIONS", TARGET_REGIONS.join(",")),
        ("WORK_QUEUE_URL", work.clone()),
        ("DEAD_LETTER_QUEUE_URL", dlq.clone()),
        ("COPY_POLL_SECONDS", "1".into()),
        ("DISABLE_COPIES_WITH_SOURCE", "true".into()),
    ]);
    let drain = || drain_queue_with(&sqs, &work, Duration::from_secs(90), |batch| lambda.invoke(batch));
    let copies = |region: &'static str, image: String| {
        let sdk = sdk.clone();
        async move { copies_of(&sdk, region, &image).await.unwrap() }
    };
    let east = ec2_client(&sdk, "us-east-1");
    let new_image = |name: &'static str| {
        let east = east.clone();
        async move { seed_source_image(&east, name, &[], &[]).await.unwrap() }
    };
    let mut samples: Vec<String> = std::fs::read_dir(manifest_dir().join("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    samples.sort();
    let mut invoked = Vec::new();
    let mut invoke = |name: &'static str, image: &str| {
        invoked.push(name.to_string());
        lambda.invoke(sample(name, image))
    };

    // An AMI available, straight from EventBridge: one copy in every target region. The function learns its
    // account from STS, as cargo lambda's runtime sends a placeholder function ARN.
    let image = new_image("available").await;
    let answer = invoke("ami-available.json", &image).await.unwrap();
    assert_eq!(answer, json!({"dead_lettered": [], "completed": 0}));
    assert!(drain().await.unwrap().invocations > 0);
    for region in TARGET_REGIONS {
        assert_eq!(copies(region, image.clone()).await.len(), 1, "{region}");
    }

    // The AMI disabled (DISABLE_COPIES_WITH_SOURCE): its copies are disabled with it.
    east.disable_image().image_id(&image).send().await.unwrap();
    invoke("ami-disabled.json", &image).await.unwrap();
    let eu = copies("eu-west-1", image.clone()).await;
    assert_eq!(eu[0].state().map(|s| s.as_str()), Some("disabled"));

    // An AMI deregistered: its copies are looked for, nothing copied or enqueued.
    let image = new_image("deregistered").await;
    invoke("ami-deregistered.json", &image).await.unwrap();
    assert_eq!(drain().await.unwrap().invocations, 0);
    assert!(copies("eu-west-1", image.clone()).await.is_empty());

    // An SQS batch carrying the EventBridge event: acknowledged, then copied.
    let image = new_image("sqs-eventbridge").await;
    let answer = invoke("sqs-eventbridge.json", &image).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    drain().await.unwrap();
    assert_eq!(copies("us-west-2", image.clone()).await.len(), 1);

    // An SQS batch carrying a work item that narrows the regions.
    let image = new_image("sqs-work-item").await;
    assert_eq!(invoke("sqs-work-item.json", &image).await.unwrap(), json!({"batchItemFailures": []}));
    drain().await.unwrap();
    assert_eq!(copies("ap-southeast-2", image.clone()).await.len(), 1);
    assert!(copies("us-west-2", image.clone()).await.is_empty(), "the work item's regions replace the configured ones");

    // A malformed batch: nothing retried, every message dead-lettered with its reason.
    let answer = invoke("sqs-malformed.json", SAMPLE_IMAGE).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(dead_letter_reasons(&sqs, &dlq).await.unwrap().len(), 3);

    // An Image Builder build: its AMI is read through GetImage and copied.
    let image = new_image("built-by-image-builder").await;
    register_image_build(&emulator, SAMPLE_BUILD, &[("us-east-1", &image, EMULATOR_ACCOUNT)]).unwrap();
    invoke("imagebuilder-available.json", &image).await.unwrap();
    drain().await.unwrap();
    assert_eq!(copies("eu-west-1", image.clone()).await.len(), 1);

    // The scheduled sweep, its time set to now: an image whose event never arrived is found and copied.
    let image = new_image("missed-event").await;
    let now = ami_replicator::core::time::format_rfc3339(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64,
    );
    let mut sweep = sample("scheduled-sweep.json", &image);
    sweep["time"] = Value::String(now);
    invoked.push("scheduled-sweep.json".into());
    lambda.invoke(sweep).await.unwrap();
    drain().await.unwrap();
    for region in TARGET_REGIONS {
        assert_eq!(copies(region, image.clone()).await.len(), 1, "{region}");
    }

    invoked.sort();
    assert_eq!(invoked, samples, "every sample in events/ is invoked");
    // The function learnt its account once, from STS (no call at start-up, none per invocation).
    assert_eq!(emulator.calls().unwrap()["GetCallerIdentity"], 1, "{}", lambda.logs());
}
