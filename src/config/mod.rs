//! Configuration: every environment variable read and validated once, at start-up. All problems are reported
//! together, each naming its variable (or its rule and key).
//!
//! A rule's settings ([`crate::core::replication_rules::RuleSettings`]) are read in one place, [`rule::read`], from
//! the environment (the one rule its variables form) or from each rule of a REPLICATION_RULES document
//! ([`replication_rules`]); the deployment's own settings are read here; [`deployment`] checks what the whole
//! deployment must agree on; [`entries`] parses the entries of lists (keys, roles, tags, templates).

use crate::core::ids::{AccountId, Region};
use crate::core::image::Tag;
use crate::core::replication_rules::RuleSettings;
use crate::core::step::{JobLimits, MAX_DELAY_SECONDS};
use crate::service::DeploymentSettings;
use deployment::{union_of, RULE_VARIABLES};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub settings: DeploymentSettings,
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
        let Some(raw) = self.get(name) else { return default };
        rule::parse_flag(&raw).unwrap_or_else(|| {
            self.problems.push(format!("{name}: {:?} is not true or false", raw.to_ascii_lowercase()));
            default
        })
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
        // The environment's variables are a one-rule document: without REPLICATION_RULES the one rule, with it
        // what every rule's unset settings take, and what the stack's policy allows.
        let (stack, env_roles) =
            rule::read(&mut rule::Environment { lookup, problems: &mut r.problems }, &RuleSettings::unset());
        if stack.target_regions.is_empty() && r.problems.is_empty() && rules_document.is_none() {
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
        let max_copies_per_region = r.number("MAX_CONCURRENT_COPIES_PER_REGION", 100, 1..=10_000);
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
        let publish_events = r.flag("PUBLISH_EVENTS", false);
        let (rules, target_roles) = match rules_document.filter(|d| !d.starts_with("ssm:")) {
            None => (Vec::new(), env_roles.into_iter().collect::<BTreeMap<_, _>>()),
            Some(doc) => match replication_rules::parse_document(&doc, &stack) {
                Ok(set) => (set.rules, set.roles),
                Err(problems) => {
                    r.problems.extend(problems);
                    (Vec::new(), BTreeMap::new())
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
                (format!("REPLICATION_RULES rule {:?} ssm_parameter", rule.name), &rule.settings.ssm_parameter_template)
            });
            for (field, template) in
                named.chain([("SSM_PARAMETER_TEMPLATE".to_string(), &stack.ssm_parameter_template)])
            {
                if let Some(template) = template.as_deref().filter(|t| !t.starts_with(&prefix)) {
                    r.problems.push(format!("{field}: {template} is outside SSM_PARAMETER_PREFIX {prefix} (the function may write only there)"));
                }
            }
        }
        if !r.problems.is_empty() {
            return Err(ConfigError(r.problems));
        }
        let (rule, trusted_source_accounts) =
            if rules.is_empty() { (stack, trusted_source_accounts) } else { union_of(&rules, stack) };
        Ok(Config {
            target_roles,
            settings: DeploymentSettings {
                rules,
                rule,
                trusted_source_accounts,
                source_regions,
                tag_filter,
                sweep_lookback_hours,
                job_max_age_hours,
                max_copies_per_region,
                step: JobLimits { poll_seconds, capacity_max_seconds: poll_seconds.max(1), ..JobLimits::default() },
                deregister_copies_with_source,
                copy_events,
                publish_events,
                max_message_bytes,
            },
            work_queue_url: work_queue_url.unwrap_or_default(),
            dead_letter_queue_url,
            admission_table,
        })
    }
}

pub mod replication_rules;
pub mod rule;

mod deployment;

mod entries;

#[cfg(test)]
mod replication_rules_tests;
#[cfg(test)]
mod tests;
