//! Replication rules (REPLICATION_RULES): which treatment a source image gets, chosen by what EC2 says of it
//! (tags, name, owner, region). The first rule that matches wins; an image no rule matches is not replicated.
//! Without rules, today's variables form the one rule. Pure.

use super::copy_rules::EncryptionSettings;
use super::ids::{AccountId, Region};
use super::image::{ImageInfo, Tag};
use super::share::ShareSettings;
use std::fmt;

/// The tag a copy carries with the name of the rule it was made under.
pub const RULE_TAG: &str = "ami-replicator:rule";

/// The name of the one rule the variables form when REPLICATION_RULES is unset.
pub const DEFAULT_RULE: &str = "default";

/// A tag a source must have: `key` with any of `values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagMatch {
    pub key: String,
    pub values: Vec<String>,
}

/// What a rule's sources look like. Every given criterion must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Tags the source must have (each key with one of its values).
    pub tags: Vec<TagMatch>,
    /// A glob (`*`, `?`, `[...]`) the source's name must match.
    pub name: Option<glob::Pattern>,
    /// The source's owner may be this account (`"self"`, the default when no owner is named).
    pub this_account: bool,
    /// Other owners whose images, shared with this account, the rule replicates.
    pub owners: Vec<AccountId>,
    /// Source regions (empty: any source region of the deployment).
    pub regions: Vec<Region>,
}

impl Default for Match {
    fn default() -> Self {
        Self { tags: Vec::new(), name: None, this_account: true, owners: Vec::new(), regions: Vec::new() }
    }
}

/// IN_USE_DAYS when unset: Image Builder's lifecycle policies exclude AMIs launched in a recent period too.
pub const DEFAULT_IN_USE_DAYS: u32 = 30;

/// What a rule does with its sources' copies: the one definition of a rule's settings. Without REPLICATION_RULES
/// the environment's variables form the one rule; with rules, each rule's document says them (unset: the
/// variables'). Each field says its variable and its key in a rules document. A new setting is its field here,
/// its line in `config::rule::read` (which names every field: one forgotten does not compile), and its use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSettings {
    /// TARGET_REGIONS (`regions`): where this account gets copies.
    pub target_regions: Vec<Region>,
    /// TARGET_ACCOUNTS (`accounts`): accounts that get copies of their own (their roles are the adapter's).
    pub target_accounts: Vec<AccountId>,
    /// ENCRYPT_COPIES (`encrypt`), KMS_KEY_IDS (`kms_keys`).
    pub encryption: EncryptionSettings,
    /// COPY_SOURCE_LAUNCH_PERMISSIONS, SHARE_WITH_*, ALLOW_PUBLIC (`share`).
    pub share: ShareSettings,
    /// COPY_DESCRIPTION_TEMPLATE (`description`); `None`: copies keep the source's description.
    pub description_template: Option<String>,
    /// EXTRA_TAGS (`tags`), put on every copy and its snapshots.
    pub extra_tags: Vec<Tag>,
    /// SSM_PARAMETER_TEMPLATE (`ssm_parameter`): each shared copy's id is put in this parameter of its place.
    pub ssm_parameter_template: Option<String>,
    /// COPY_COMPLETION_MINUTES (`completion_minutes`): time-based copies that finish within this many minutes
    /// (15..2880, steps of 15); `None`: best effort. Their throughput quota is capacity, like the copy limit.
    pub copy_completion_minutes: Option<u32>,
    /// SHARE_SNAPSHOTS (`share.snapshots`): the accounts a copy is shared with may also create volumes from its
    /// snapshots, so that they can copy it onward (never the group `all`).
    pub share_snapshots: bool,
    /// RETAIN_COPIES, FAMILY_TAG, RETAIN_DRY_RUN (`retain_copies`, `family_tag`, `retain_dry_run`); `None`: every
    /// copy is kept.
    pub retention: Option<super::retention::Retention>,
    /// LAUNCH_TEMPLATES (`launch_templates`): per place, the launch template that gets a version with each shared
    /// copy.
    pub launch_templates: std::collections::BTreeMap<super::ids::Place, String>,
    /// LAUNCH_TEMPLATE_SET_DEFAULT (`launch_template_set_default`): that version becomes the template's default.
    pub launch_template_set_default: bool,
    /// DISABLE_COPIES_WITH_SOURCE (`disable_copies_with_source`): a source disabled disables its available copies
    /// (those nothing uses); enabled again, its disabled copies are enabled and shared again (enabling restores no
    /// launch permission).
    pub disable_copies_with_source: bool,
    /// IN_USE_DAYS (`in_use_days`): a copy launched (by any account) within this many days is in use: never
    /// retired, deregistered or disabled with its source. 0: only DescribeImageReferences tells.
    pub in_use_days: u32,
}

impl RuleSettings {
    /// The settings when no variable is set: each variable's documented default. `Default` is every setting off,
    /// which is what a setting not named here (or in [`RuleSettings::narrowest`]) takes.
    pub fn unset() -> Self {
        Self {
            share: ShareSettings { copy_source_permissions: true, ..ShareSettings::default() },
            in_use_days: DEFAULT_IN_USE_DAYS,
            ..Self::default()
        }
    }

    /// For a job no rule of the configuration names: every setting off (no destination, no sharing beyond the
    /// owner, no outputs, no lifecycle) except what keeps its copy as it is: its encryption, its completion time,
    /// what counts as in use. A new setting is off here without a line.
    pub fn narrowest(&self) -> Self {
        Self {
            encryption: self.encryption.clone(),
            copy_completion_minutes: self.copy_completion_minutes,
            in_use_days: self.in_use_days,
            ..Self::default()
        }
    }
}

/// A named rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub matcher: Match,
    pub settings: RuleSettings,
}

/// Why a rule does not match a source: the first criterion that fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub rule: String,
    pub why: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {}: {}", self.rule, self.why)
    }
}

impl Match {
    /// `None` when `image` (in `region`, as EC2 shows it) matches; else the first criterion that fails.
    pub fn mismatch(&self, image: &ImageInfo, region: &Region, home: &AccountId) -> Option<String> {
        let owner_ok = match &image.owner {
            Some(o) => (self.this_account && o == home) || self.owners.contains(o),
            None => false,
        };
        if !owner_ok {
            let owner = image.owner.as_ref().map_or("unknown".to_string(), ToString::to_string);
            return Some(format!("owner {owner} is not one of its owners"));
        }
        if !self.regions.is_empty() && !self.regions.contains(region) {
            return Some(format!("source region {region} is not one of its regions"));
        }
        for wanted in &self.tags {
            if !image.tag(&wanted.key).is_some_and(|v| wanted.values.iter().any(|w| w == v)) {
                return Some(format!("tag {}={} is missing", wanted.key, wanted.values.join("|")));
            }
        }
        if let Some(pattern) = &self.name {
            if !image.name.as_deref().is_some_and(|n| pattern.matches(n)) {
                return Some(format!("name {:?} does not match {}", image.name.as_deref().unwrap_or(""), pattern));
            }
        }
        None
    }

    /// Whether every source `later` matches is matched by `self` too (so a rule after `self` with `later` as its
    /// match would never be chosen). Conservative: `false` when containment cannot be shown.
    pub fn covers(&self, later: &Match) -> bool {
        let owners = (!later.this_account || self.this_account) && later.owners.iter().all(|o| self.owners.contains(o));
        let regions = self.regions.is_empty()
            || (!later.regions.is_empty() && later.regions.iter().all(|r| self.regions.contains(r)));
        let tags = self.tags.iter().all(|mine| {
            later
                .tags
                .iter()
                .any(|theirs| theirs.key == mine.key && theirs.values.iter().all(|v| mine.values.contains(v)))
        });
        let name = match (&self.name, &later.name) {
            (None, _) => true,
            (Some(mine), _) if mine.as_str().chars().all(|c| c == '*') => true,
            (Some(mine), Some(theirs)) => {
                mine == theirs || (!theirs.as_str().contains(['*', '?', '[']) && mine.matches(theirs.as_str()))
            }
            (Some(_), None) => false,
        };
        owners && regions && tags && name
    }
}

/// The rule for `image` in `region`: the first that matches, or why none does (each rule's first failing
/// criterion).
pub fn select<'r>(
    rules: &'r [Rule],
    image: &ImageInfo,
    region: &Region,
    home: &AccountId,
) -> Result<&'r Rule, Vec<Mismatch>> {
    let mut mismatches = Vec::new();
    for rule in rules {
        match rule.matcher.mismatch(image, region, home) {
            None => return Ok(rule),
            Some(why) => mismatches.push(Mismatch { rule: rule.name.clone(), why }),
        }
    }
    Err(mismatches)
}

/// The rules an earlier rule shadows entirely, as `(shadowed, by)` names.
pub fn shadowed(rules: &[Rule]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, later) in rules.iter().enumerate() {
        if let Some(earlier) = rules[..i].iter().find(|e| e.matcher.covers(&later.matcher)) {
            out.push((later.name.clone(), earlier.name.clone()));
        }
    }
    out
}

/// Whether a rule name is usable as a tag value, a log field and an EMF dimension: 1-64 characters of letters,
/// digits, `-`, `_` and `.`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
#[path = "replication_rules_tests.rs"]
mod tests;
