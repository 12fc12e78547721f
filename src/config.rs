//! Configuration: every environment variable read and validated once, at start-up. All problems are reported
//! together, each naming its variable.

use crate::core::ids::{AccountId, OrganizationArn, OuArn, Place, Region};
use crate::core::image::{LaunchPermission, Tag};
use crate::core::rules::{EncryptionPolicy, DESCRIPTION_PLACEHOLDERS};
use crate::core::ruleset::Treatment;
use crate::core::share::SharePolicy;
use crate::core::step::{StepPolicy, MAX_DELAY_SECONDS};
use crate::service::Settings;
use deployment::{union_of, RULE_VARIABLES};
use entries::{parse_extra_tag, parse_kms_entry, parse_target_account, parse_template_entry, placeholders};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub settings: Settings,
    /// TARGET_ACCOUNTS: the role the replicator assumes in each target account.
    pub target_roles: BTreeMap<AccountId, String>,
    pub work_queue_url: String,
    pub dead_letter_queue_url: Option<String>,
    /// ADMISSION_TABLE: the DynamoDB table of the places' admission leases; `None`: admission may race.
    pub admission_table: Option<String>,
}

/// Every problem found in the environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}", self.0.join("; "))
    }
}

struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
}

impl Reader<'_> {
    /// The trimmed value, `None` when unset or blank.
    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    fn required(&mut self, name: &str) -> String {
        self.get(name).unwrap_or_else(|| {
            self.problems.push(format!("{name} is required"));
            String::new()
        })
    }

    fn list<T, E: fmt::Display>(&mut self, name: &str, parse: impl Fn(&str) -> Result<T, E>) -> Vec<T> {
        let Some(raw) = self.get(name) else { return Vec::new() };
        let mut out = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match parse(part) {
                Ok(v) => out.push(v),
                Err(e) => self.problems.push(format!("{name}: {e}")),
            }
        }
        out
    }

    fn flag(&mut self, name: &str, default: bool) -> bool {
        match self.get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
            None => default,
            Some("true" | "1" | "yes") => true,
            Some("false" | "0" | "no") => false,
            Some(other) => {
                self.problems.push(format!("{name}: {other:?} is not true or false"));
                default
            }
        }
    }

    fn number(&mut self, name: &str, default: u32, range: std::ops::RangeInclusive<u32>) -> u32 {
        match self.get(name) {
            None => default,
            Some(raw) => match raw.parse::<u32>() {
                Ok(v) if range.contains(&v) => v,
                _ => {
                    let (lo, hi) = (range.start(), range.end());
                    self.problems.push(format!("{name}: {raw:?} is not a whole number from {lo} to {hi}"));
                    default
                }
            },
        }
    }

    fn url(&mut self, name: &str, value: Option<String>) -> Option<String> {
        let v = value?;
        if v.starts_with("https://") || v.starts_with("http://") {
            Some(v)
        } else {
            self.problems
                .push(format!("{name}: {v:?} is not a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"));
            None
        }
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut r = Reader { lookup, problems: Vec::new() };
        let rules_document = r.get("REPLICATION_RULES");
        if let Some(doc) = &rules_document {
            if doc.starts_with("ssm:") {
                r.problems
                    .push("REPLICATION_RULES: an ssm: parameter is read at start-up (Config::resolve_rules)".into());
            }
            for name in RULE_VARIABLES {
                if r.get(name).is_some() {
                    r.problems
                        .push(format!("{name} is set together with REPLICATION_RULES: say it in the rules instead"));
                }
            }
        }
        let target_regions = r.list("TARGET_REGIONS", Region::parse);
        if target_regions.is_empty() && r.problems.is_empty() && rules_document.is_none() {
            r.problems
                .push("TARGET_REGIONS is required (comma-separated region names, e.g. eu-west-1,us-west-2)".into());
        }
        let work_queue_url = r.required("WORK_QUEUE_URL");
        let work_queue_url = r.url("WORK_QUEUE_URL", Some(work_queue_url).filter(|u| !u.is_empty()));
        let dead_letter = r.get("DEAD_LETTER_QUEUE_URL");
        let dead_letter_queue_url = r.url("DEAD_LETTER_QUEUE_URL", dead_letter);
        let admission_table = r.get("ADMISSION_TABLE");
        let tag_filter = r.get("IMAGE_TAG_FILTER").and_then(|raw| match raw.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Some(Tag::new(k.trim(), v.trim())),
            _ => {
                r.problems.push(format!("IMAGE_TAG_FILTER: {raw:?} is not key=value"));
                None
            }
        });
        // With copy events forwarded from the destination regions, polling is only the safety net.
        let copy_events = r.flag("COPY_EVENTS", false);
        let poll_seconds = r.number("COPY_POLL_SECONDS", if copy_events { 300 } else { 60 }, 0..=MAX_DELAY_SECONDS);
        let copy_completion_minutes =
            r.get("COPY_COMPLETION_MINUTES").map(|_| r.number("COPY_COMPLETION_MINUTES", 0, 15..=2880));
        if let Some(m) = copy_completion_minutes.filter(|m| *m % 15 != 0) {
            r.problems.push(format!("COPY_COMPLETION_MINUTES: {m} is not a multiple of 15 (15..2880 in steps of 15)"));
        }
        let max_copies_per_region = r.number("MAX_CONCURRENT_COPIES_PER_REGION", 100, 1..=10_000);
        let copy_source_permissions = r.flag("COPY_SOURCE_LAUNCH_PERMISSIONS", true);
        let allow_public = r.flag("ALLOW_PUBLIC", false);
        let mut extra: Vec<LaunchPermission> =
            r.list("SHARE_WITH_ACCOUNTS", AccountId::parse).into_iter().map(LaunchPermission::Account).collect();
        extra.extend(
            r.list("SHARE_WITH_ORGANIZATION_ARNS", OrganizationArn::parse)
                .into_iter()
                .map(LaunchPermission::Organization),
        );
        extra.extend(r.list("SHARE_WITH_OU_ARNS", OuArn::parse).into_iter().map(LaunchPermission::OrganizationalUnit));
        let encrypt_copies = r.flag("ENCRYPT_COPIES", false);
        let target_roles: BTreeMap<AccountId, String> =
            r.list("TARGET_ACCOUNTS", parse_target_account).into_iter().collect();
        let target_accounts: Vec<AccountId> = target_roles.keys().cloned().collect();
        let kms_keys: BTreeMap<Place, String> = r
            .list("KMS_KEY_IDS", |entry| parse_kms_entry(entry, &target_regions, &target_accounts))
            .into_iter()
            .collect();
        let launch_templates: BTreeMap<Place, String> = r
            .list("LAUNCH_TEMPLATES", |entry| parse_template_entry(entry, &target_regions, &target_accounts))
            .into_iter()
            .collect();
        let deregister_copies_with_source = r.flag("DEREGISTER_COPIES_WITH_SOURCE", false);
        let trusted_source_accounts = r.list("TRUSTED_SOURCE_ACCOUNTS", AccountId::parse);
        // The sweep lists the source regions; by default the function's own (Lambda sets AWS_REGION).
        let mut source_regions = r.list("SOURCE_REGIONS", Region::parse);
        if source_regions.is_empty() {
            source_regions = r.list("AWS_REGION", Region::parse);
        }
        let sweep_lookback_hours = r.number("SWEEP_LOOKBACK_HOURS", 48, 1..=2160);
        // The work queue's MaximumMessageSize (the template passes the one it sets): from 1 KiB to SQS's 1 MiB.
        let max_message_bytes = r.number(
            "MAX_MESSAGE_BYTES",
            crate::core::messages::DEFAULT_MAX_MESSAGE_BYTES as u32,
            1024..=crate::core::messages::SQS_MAX_MESSAGE_BYTES as u32,
        ) as usize;
        let job_max_age_hours = r.number("JOB_MAX_AGE_HOURS", crate::service::DEFAULT_JOB_MAX_AGE_HOURS, 1..=336);
        let description_template = r.get("COPY_DESCRIPTION_TEMPLATE");
        if let Some(template) = &description_template {
            for placeholder in placeholders(template) {
                if !DESCRIPTION_PLACEHOLDERS.contains(&placeholder) {
                    let known = DESCRIPTION_PLACEHOLDERS.join(", ");
                    r.problems
                        .push(format!("COPY_DESCRIPTION_TEMPLATE: unknown placeholder {placeholder} (known: {known})"));
                }
            }
        }
        let extra_tags = r.list("EXTRA_TAGS", parse_extra_tag);
        let publish_events = r.flag("PUBLISH_EVENTS", false);
        let ssm_parameter_template = r.get("SSM_PARAMETER_TEMPLATE");
        if let Some(Err(e)) = ssm_parameter_template.as_deref().map(crate::core::parameters::check_template) {
            r.problems.push(format!("SSM_PARAMETER_TEMPLATE: {e}"));
        }

        let defaults = Treatment {
            target_regions,
            target_accounts,
            encryption: EncryptionPolicy { encrypt_copies, kms_keys },
            share: SharePolicy { copy_source_permissions, extra, allow_public },
            description_template,
            extra_tags,
            ssm_parameter_template,
            copy_completion_minutes,
            share_snapshots: r.flag("SHARE_SNAPSHOTS", false),
            retention: deployment::retention_from(&mut r),
            launch_templates,
            launch_template_set_default: r.flag("LAUNCH_TEMPLATE_SET_DEFAULT", false),
            disable_copies_with_source: r.flag("DISABLE_COPIES_WITH_SOURCE", false),
            in_use_days: r.number("IN_USE_DAYS", crate::service::DEFAULT_IN_USE_DAYS, 0..=3650),
        };
        let (rules, target_roles) = match rules_document.filter(|d| !d.starts_with("ssm:")) {
            None => (Vec::new(), target_roles),
            Some(doc) => match rules::parse_document(&doc, &defaults) {
                Ok(set) => (set.rules, set.roles),
                Err(problems) => {
                    r.problems.extend(problems);
                    (Vec::new(), target_roles)
                }
            },
        };
        // ALLOWED_REGIONS: where the policy lets the function write (the template's TargetRegions).
        let allowed = r.list("ALLOWED_REGIONS", Region::parse);
        r.problems.extend(deployment::outside_allowed_regions(&rules, &allowed));
        r.problems.extend(deployment::outside_source_regions(&rules, &source_regions));
        // Target accounts copy into the source's own region too, where only the function's record of its copies
        // (kept in the admission table) tells its copy from an image made there from an instance of the source.
        if !target_roles.is_empty() && admission_table.is_none() {
            r.problems.push(
                "TARGET_ACCOUNTS: ADMISSION_TABLE is required with target accounts (their copies in the source region \
                 are known by the function's record of them, kept in that table)"
                    .into(),
            );
        }
        // SSM_PARAMETER_PREFIX: where the policy lets the function write parameters; every template within it.
        if let Some(prefix) = r.get("SSM_PARAMETER_PREFIX") {
            if let Err(e) = crate::core::parameters::check_prefix(&prefix) {
                r.problems.push(format!("SSM_PARAMETER_PREFIX: {e}"));
            }
            let named = rules.iter().map(|rule| {
                (
                    format!("REPLICATION_RULES rule {:?} ssm_parameter", rule.name),
                    &rule.treatment.ssm_parameter_template,
                )
            });
            for (field, template) in
                named.chain([("SSM_PARAMETER_TEMPLATE".to_string(), &defaults.ssm_parameter_template)])
            {
                if let Some(template) = template.as_deref().filter(|t| !t.starts_with(&prefix)) {
                    r.problems.push(format!("{field}: {template} is outside SSM_PARAMETER_PREFIX {prefix} (the function may write only there)"));
                }
            }
        }
        if !r.problems.is_empty() {
            return Err(ConfigError(r.problems));
        }
        let (defaults, trusted_source_accounts) =
            if rules.is_empty() { (defaults, trusted_source_accounts) } else { union_of(&rules, defaults) };
        let Treatment {
            target_regions,
            target_accounts,
            encryption,
            share,
            description_template,
            extra_tags,
            ssm_parameter_template,
            copy_completion_minutes,
            share_snapshots,
            retention,
            launch_templates,
            launch_template_set_default,
            disable_copies_with_source,
            in_use_days,
        } = defaults;
        Ok(Config {
            target_roles,
            settings: Settings {
                rules,
                target_regions,
                target_accounts,
                trusted_source_accounts,
                source_regions,
                sweep_lookback_hours,
                job_max_age_hours,
                deregister_copies_with_source,
                copy_events,
                copy_completion_minutes,
                publish_events,
                ssm_parameter_template,
                share_snapshots,
                retention,
                launch_templates,
                launch_template_set_default,
                disable_copies_with_source,
                in_use_days,
                max_message_bytes,
                tag_filter,
                max_copies_per_region,
                step: StepPolicy { poll_seconds, capacity_max_seconds: poll_seconds.max(1), ..StepPolicy::default() },
                share,
                encryption,
                description_template,
                extra_tags,
            },
            work_queue_url: work_queue_url.unwrap_or_default(),
            dead_letter_queue_url,
            admission_table,
        })
    }
}

#[path = "config_rules.rs"]
pub mod rules;

#[path = "config_deployment.rs"]
mod deployment;

#[path = "config_entries.rs"]
mod entries;

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
