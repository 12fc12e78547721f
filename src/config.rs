//! Configuration: every environment variable read and validated once, at start-up. All problems are reported
//! together, each naming its variable.

use crate::core::ids::{AccountId, OrganizationArn, OuArn, Region};
use crate::core::image::{LaunchPermission, Tag};
use crate::core::share::SharePolicy;
use crate::core::step::{StepPolicy, MAX_DELAY_SECONDS};
use crate::service::Settings;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub settings: Settings,
    pub work_queue_url: String,
    pub dead_letter_queue_url: Option<String>,
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
        let target_regions = r.list("TARGET_REGIONS", Region::parse);
        if target_regions.is_empty() && r.problems.is_empty() {
            r.problems
                .push("TARGET_REGIONS is required (comma-separated region names, e.g. eu-west-1,us-west-2)".into());
        }
        let work_queue_url = r.required("WORK_QUEUE_URL");
        let work_queue_url = r.url("WORK_QUEUE_URL", Some(work_queue_url).filter(|u| !u.is_empty()));
        let dead_letter = r.get("DEAD_LETTER_QUEUE_URL");
        let dead_letter_queue_url = r.url("DEAD_LETTER_QUEUE_URL", dead_letter);
        let tag_filter = r.get("IMAGE_TAG_FILTER").and_then(|raw| match raw.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Some(Tag::new(k.trim(), v.trim())),
            _ => {
                r.problems.push(format!("IMAGE_TAG_FILTER: {raw:?} is not key=value"));
                None
            }
        });
        let poll_seconds = r.number("COPY_POLL_SECONDS", 60, 0..=MAX_DELAY_SECONDS);
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

        if !r.problems.is_empty() {
            return Err(ConfigError(r.problems));
        }
        Ok(Config {
            settings: Settings {
                target_regions,
                tag_filter,
                max_copies_per_region,
                step: StepPolicy { poll_seconds, capacity_max_seconds: poll_seconds.max(1), ..StepPolicy::default() },
                share: SharePolicy { copy_source_permissions, extra, allow_public },
            },
            work_queue_url: work_queue_url.unwrap_or_default(),
            dead_letter_queue_url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(&move |k| map.get(k).cloned())
    }

    const QUEUE: (&str, &str) = ("WORK_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/work");

    #[test]
    fn minimal_configuration_has_safe_defaults() {
        let c = parse(&[("TARGET_REGIONS", "eu-west-1, us-west-2"), QUEUE]).unwrap();
        assert_eq!(c.settings.target_regions.len(), 2);
        assert_eq!(c.settings.step.poll_seconds, 60);
        assert_eq!(c.settings.max_copies_per_region, 100);
        assert!(c.settings.share.copy_source_permissions);
        assert!(!c.settings.share.allow_public);
        assert!(c.settings.share.extra.is_empty());
        assert_eq!(c.settings.tag_filter, None);
        assert_eq!(c.dead_letter_queue_url, None);
    }

    #[test]
    fn everything_set() {
        let c = parse(&[
            ("TARGET_REGIONS", "eu-west-1"),
            QUEUE,
            ("DEAD_LETTER_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/dlq"),
            ("IMAGE_TAG_FILTER", "replicate=true"),
            ("COPY_POLL_SECONDS", "0"),
            ("COPY_SOURCE_LAUNCH_PERMISSIONS", "false"),
            ("SHARE_WITH_ACCOUNTS", "111111111111,222222222222"),
            ("SHARE_WITH_ORGANIZATION_ARNS", "arn:aws:organizations::123456789012:organization/o-abc123def4"),
            ("SHARE_WITH_OU_ARNS", "arn:aws:organizations::123456789012:ou/o-abc123def4/ou-ab12-cd34ef56"),
            ("ALLOW_PUBLIC", "TRUE"),
            ("MAX_CONCURRENT_COPIES_PER_REGION", "300"),
        ])
        .unwrap();
        assert_eq!(c.settings.tag_filter, Some(Tag::new("replicate", "true")));
        assert_eq!(c.settings.step.poll_seconds, 0);
        assert!(!c.settings.share.copy_source_permissions);
        assert!(c.settings.share.allow_public);
        assert_eq!(c.settings.share.extra.len(), 4);
        assert_eq!(c.settings.max_copies_per_region, 300);
    }

    #[test]
    fn every_problem_is_reported_with_its_variable() {
        let err = parse(&[
            ("TARGET_REGIONS", "eu-west-1,mars-north-1"),
            ("SHARE_WITH_ACCOUNTS", "12345"),
            ("SHARE_WITH_OU_ARNS", "ou-nope"),
            ("COPY_POLL_SECONDS", "901"),
            ("ALLOW_PUBLIC", "maybe"),
            ("IMAGE_TAG_FILTER", "novalue"),
            ("MAX_CONCURRENT_COPIES_PER_REGION", "0"),
        ])
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "mars-north-1",
            "WORK_QUEUE_URL is required",
            "SHARE_WITH_ACCOUNTS",
            "SHARE_WITH_OU_ARNS",
            "COPY_POLL_SECONDS",
            "ALLOW_PUBLIC",
            "IMAGE_TAG_FILTER",
            "MAX_CONCURRENT_COPIES_PER_REGION",
        ] {
            assert!(text.contains(needle), "{needle} missing from: {text}");
        }
    }

    #[test]
    fn target_regions_are_required() {
        let err = parse(&[QUEUE]).unwrap_err();
        assert!(err.to_string().contains("TARGET_REGIONS is required"), "{err}");
    }
}
