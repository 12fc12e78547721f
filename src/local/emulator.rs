//! The local AWS emulator process (moto behind scripts/emulator.py) and what the tests tell it: builds, references,
//! a throttling storm.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The account moto answers for with any credentials.
pub const EMULATOR_ACCOUNT: &str = "123456789012";

/// The local AWS emulator: moto behind scripts/emulator.py, on a free loopback port, stopped when dropped.
/// Its Python is `EMULATOR_PYTHON`, or the project's `.venv` (made by scripts/setup-emulator.sh).
pub struct Emulator {
    child: Child,
    pub endpoint: String,
    pub port: u16,
    dir: PathBuf,
}

fn emulator_python() -> PathBuf {
    match std::env::var("EMULATOR_PYTHON") {
        Ok(p) => PathBuf::from(p),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    }
}

impl Emulator {
    /// Starts the emulator; copies stay pending for `copy_pending_seconds` before they become available.
    pub fn start(copy_pending_seconds: f64) -> Result<Emulator, String> {
        Self::start_throttled(copy_pending_seconds, 0.0)
    }

    /// [`Self::start`], answering a share `throttle_rate` of DescribeImages, CopyImage and ModifyImageAttribute
    /// calls with RequestLimitExceeded (a throttling storm).
    pub fn start_throttled(copy_pending_seconds: f64, throttle_rate: f64) -> Result<Emulator, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("ami-replicator-emulator-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let port_file = dir.join("port");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/emulator.py");
        let python = emulator_python();
        if !python.exists() {
            return Err(format!(
                "{} not found: run scripts/setup-emulator.sh (scripts/test.sh does)",
                python.display()
            ));
        }
        let log = std::fs::File::create(dir.join("emulator.log")).map_err(|e| e.to_string())?;
        let child = Command::new(&python)
            .arg(script)
            .args(["--port", "0", "--port-file"])
            .arg(&port_file)
            .args(["--copy-pending-seconds", &copy_pending_seconds.to_string()])
            .args(["--throttle-rate", &throttle_rate.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", python.display()))?;
        let mut emulator = Emulator { child, endpoint: String::new(), port: 0, dir };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Some(port) = std::fs::read_to_string(&port_file).ok().and_then(|s| s.trim().parse::<u16>().ok()) {
                emulator.port = port;
                emulator.endpoint = format!("http://127.0.0.1:{port}");
                return Ok(emulator);
            }
            if let Ok(Some(status)) = emulator.child.try_wait() {
                let log = std::fs::read_to_string(emulator.dir.join("emulator.log")).unwrap_or_default();
                return Err(format!("the emulator exited ({status}): {log}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("the emulator did not start within 60 s".into())
    }

    /// SDK configuration pointed at the emulator (the same thing AWS_ENDPOINT_URL does for the function).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        crate::aws::sdk_defaults()
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ec2::config::Credentials::new("testing", "testing", None, None, "emulator"))
            .load()
            .await
    }

    /// API calls the emulator has answered so far, by action.
    pub fn calls(&self) -> Result<Value, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        write!(stream, "GET /_emulator/calls HTTP/1.0\r\nHost: localhost\r\n\r\n").map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream.read_to_string(&mut response).map_err(|e| e.to_string())?;
        let body = response.split("\r\n\r\n").nth(1).unwrap_or("{}");
        serde_json::from_str(body).map_err(|e| e.to_string())
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Registers an EC2 Image Builder build with the emulator (which answers GetImage for it): its ARN and the AMIs
/// it made, as `(region, image, account)`.
pub fn register_image_build(emulator: &Emulator, arn: &str, amis: &[(&str, &str, &str)]) -> Result<(), String> {
    let amis: Vec<Value> = amis
        .iter()
        .map(|(region, image, account)| json!({"region": region, "image": image, "accountId": account}))
        .collect();
    emulator
        .post("/_emulator/imagebuilder", &json!({ arn: amis }).to_string())
        .map_err(|e| format!("registering the build: {e}"))
}

/// Registers what uses `image` (DescribeImageReferences' answers, e.g. `ec2:Instance arn:...`) with the emulator.
pub fn register_image_references(emulator: &Emulator, image: &str, users: &[&str]) -> Result<(), String> {
    emulator
        .post("/_emulator/references", &json!({ image: users }).to_string())
        .map_err(|e| format!("registering references: {e}"))
}

/// Sets the share of DescribeImages, CopyImage and ModifyImageAttribute calls the emulator throttles.
pub fn set_throttle_rate(emulator: &Emulator, rate: f64) -> Result<(), String> {
    emulator.post("/_emulator/throttle", &json!({ "rate": rate }).to_string()).map_err(|e| format!("throttle: {e}"))
}

impl Emulator {
    /// POSTs `body` (JSON) to the emulator's own `path`.
    fn post(&self, path: &str, body: &str) -> Result<(), String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        write!(
            stream,
            "POST {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream.read_to_string(&mut response).map_err(|e| e.to_string())?;
        if response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200") {
            Ok(())
        } else {
            Err(response)
        }
    }
}
