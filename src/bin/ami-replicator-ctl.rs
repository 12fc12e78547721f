//! `ami-replicator-ctl`: the operator's command-line tool. Not part of the Lambda zip.
//!
//! * `status IMAGE_ID --region REGION [--json] [--function NAME]`: where is my AMI? Lists, per account and region
//!   the configuration (the source's rule) wants, the copy the product made (found by its provenance tag), its
//!   state, age and encryption, its launch permissions against what is wanted, and the dead letters that concern
//!   the image (read without consuming them). Runs with the operator's own AWS credentials; the configuration
//!   comes from the same environment variables as the function's, or from the deployed function (`--function`).
//!   Exit code 0 when complete, 1 when something is missing or failed, 2 on a usage or configuration error.
//! * `rules check FILE [--region R --tag K=V ... --name N --owner ACCOUNT]`: validates a REPLICATION_RULES
//!   document offline with the function's own configuration code (every problem at once; exit 1 when there is
//!   one), then, for an image described by its tags, name, owner and region, prints which rule applies and
//!   where its copies would go.

use ami_replicator::aws::replication_rules::config_from;
use ami_replicator::aws::{ec2::AwsEc2Regions, sqs::AwsQueue};
use ami_replicator::config::Config;
use ami_replicator::core::ids::{AccountId, ImageId, Region};
use ami_replicator::core::image::{ImageInfo, ImageState, Tag};
use ami_replicator::core::plan;
use ami_replicator::core::status::table;
use clap::{Args, Parser, Subcommand};
use std::collections::HashMap;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ami-replicator-ctl",
    version,
    about = "Operate ami-replicator: where is my AMI, and which rule applies"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Where is my AMI: every place the configuration wants a copy of IMAGE_ID, and what EC2 shows there.
    Status(StatusArgs),
    /// Replication rules (REPLICATION_RULES).
    #[command(subcommand)]
    Rules(RulesCommand),
}

#[derive(Args)]
struct StatusArgs {
    /// The source image, e.g. ami-0123456789abcdef0.
    image: String,
    /// The source image's region.
    #[arg(long)]
    region: String,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Read the configuration of this deployed function (lambda:GetFunctionConfiguration) instead of the
    /// environment variables.
    #[arg(long, value_name = "NAME")]
    function: Option<String>,
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Validate a rules document offline; with --region, say which rule applies to an image and where its copies go.
    Check(CheckArgs),
}

#[derive(Args)]
struct CheckArgs {
    /// The rules document (JSON, {"rules": [...]}); `-` reads standard input.
    file: String,
    /// The image's region (its source region); without it, only the document is checked.
    #[arg(long)]
    region: Option<String>,
    /// A tag of the image, KEY=VALUE; repeat for more.
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    tags: Vec<String>,
    /// The image's name.
    #[arg(long)]
    name: Option<String>,
    /// The image's owner account; default: this account (--account).
    #[arg(long, value_name = "ACCOUNT")]
    owner: Option<String>,
    /// The replicator's own account (copies of this account are shown as "this account").
    #[arg(long, value_name = "ACCOUNT", default_value = "123456789012")]
    account: String,
}

/// The function's environment variables, from its deployed configuration.
async fn function_environment(sdk: &aws_config::SdkConfig, name: &str) -> Result<HashMap<String, String>, String> {
    let out = aws_sdk_lambda::Client::new(sdk).get_function_configuration().function_name(name).send().await.map_err(
        |e| format!("reading the configuration of {name}: {}", aws_sdk_lambda::error::DisplayErrorContext(e)),
    )?;
    Ok(out.environment().and_then(|e| e.variables()).cloned().unwrap_or_default())
}

async fn status(args: StatusArgs) -> Result<bool, String> {
    let image = ImageId::parse(&args.image).map_err(|e| e.to_string())?;
    let region = Region::parse(&args.region).map_err(|e| e.to_string())?;
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
    // The function's record of its copies in the source region (target accounts), in its admission table.
    let records = ami_replicator::aws::copy_records(&sdk, config.admission_table.as_deref());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let report =
        ami_replicator::status::status(&ec2, &queue, &records, &config.settings, &home, &image, &region, now).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
    } else {
        print!("{}", table(&report));
    }
    Ok(report.complete)
}

/// Checks the document the function's way: the environment's treatment variables are every rule's defaults.
fn rules_check(args: CheckArgs) -> Result<bool, String> {
    let document = if args.file == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("reading standard input: {e}"))?
    } else {
        std::fs::read_to_string(&args.file).map_err(|e| format!("reading {}: {e}", args.file))?
    };
    let lookup = |name: &str| match name {
        "REPLICATION_RULES" => Some(document.clone()),
        "WORK_QUEUE_URL" => Some("https://sqs.us-east-1.amazonaws.com/123456789012/check".into()),
        // As template.yaml deploys the function: always with its admission table.
        "ADMISSION_TABLE" => std::env::var(name).ok().or_else(|| Some("AdmissionTable".into())),
        other => std::env::var(other).ok(),
    };
    let config = match Config::from_lookup(&lookup) {
        Ok(c) => c,
        Err(e) => {
            for problem in &e.0 {
                println!("problem: {problem}");
            }
            return Ok(false);
        }
    };
    let settings = &config.settings;
    println!("{} rules, valid:", settings.rules.len());
    for rule in &settings.rules {
        let regions: Vec<&str> = rule.settings.target_regions.iter().map(Region::as_str).collect();
        let accounts: Vec<&str> = rule.settings.target_accounts.iter().map(AccountId::as_str).collect();
        println!("  {}: regions [{}], accounts [{}]", rule.name, regions.join(", "), accounts.join(", "));
    }
    let Some(region) = &args.region else { return Ok(true) };
    let region = Region::parse(region).map_err(|e| e.to_string())?;
    let home = AccountId::parse(&args.account).map_err(|e| e.to_string())?;
    let owner = match &args.owner {
        Some(o) => AccountId::parse(o).map_err(|e| e.to_string())?,
        None => home.clone(),
    };
    let mut tags = Vec::new();
    for tag in &args.tags {
        let (k, v) = tag.split_once('=').ok_or_else(|| format!("--tag {tag:?} is not KEY=VALUE"))?;
        tags.push(Tag::new(k, v));
    }
    let image = ImageInfo {
        id: ImageId::parse("ami-00000000000000000").map_err(|e| e.to_string())?,
        owner: Some(owner),
        name: args.name.clone(),
        description: None,
        state: ImageState::Available,
        tags,
        size_gib: 0,
        traits: Default::default(),
        snapshots: vec![],
        created: None,
        origin: None,
        last_launched: None,
    };
    match settings.for_source(&image, &region, &home) {
        Ok((rule_settings, rule)) => {
            println!("rule: {}", rule.unwrap_or("(none)"));
            let places = plan::configured_places(
                &region,
                &rule_settings.rule.target_regions,
                &rule_settings.rule.target_accounts,
                &home,
            );
            for place in places {
                let account = place.account.as_ref().map_or("this account".to_string(), ToString::to_string);
                let key =
                    rule_settings.rule.encryption.kms_keys.get(&place).map_or(String::new(), |k| format!(" (key {k})"));
                println!("  copy to {} in {account}{key}", place.region);
            }
        }
        Err(skip) => println!("not replicated: {skip}"),
    }
    Ok(true)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Status(args) => status(args).await,
        Command::Rules(RulesCommand::Check(args)) => rules_check(args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ami-replicator-ctl: {e}");
            ExitCode::from(2)
        }
    }
}
