//! REPLICATION_RULES: the document of named rules, validated at start-up with every problem named by rule and
//! field. The `rules check` command of the command-line tool runs the same code.

use super::entries::{parse_extra_tag, parse_kms_entry, parse_target_account, parse_template_entry, placeholders};
use crate::core::ids::{AccountId, OrganizationArn, OuArn, Region};
use crate::core::image::LaunchPermission;
use crate::core::retention::Retention;
use crate::core::rules::DESCRIPTION_PLACEHOLDERS;
use crate::core::ruleset::{self, Match, Rule, TagMatch, Treatment};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The document: `{"rules": [RULE, ...]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    rules: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(rename = "match", default)]
    matcher: RawMatch,
    #[serde(default)]
    regions: Vec<String>,
    /// Target account -> the role the replicator assumes there.
    #[serde(default)]
    accounts: BTreeMap<String, String>,
    /// `REGION` or `ACCOUNT/REGION` -> key id, alias or ARN.
    #[serde(default)]
    kms_keys: BTreeMap<String, String>,
    encrypt: Option<bool>,
    share: Option<RawShare>,
    description: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    ssm_parameter: Option<String>,
    completion_minutes: Option<u32>,
    /// RETAIN_COPIES, FAMILY_TAG and RETAIN_DRY_RUN for this rule's copies (`"retain_copies": 0`: keep all).
    retain_copies: Option<u32>,
    family_tag: Option<String>,
    retain_dry_run: Option<bool>,
    /// LAUNCH_TEMPLATES: `REGION` or `ACCOUNT/REGION` -> template id or name.
    #[serde(default)]
    launch_templates: BTreeMap<String, String>,
    launch_template_set_default: Option<bool>,
    /// DISABLE_COPIES_WITH_SOURCE for this rule's copies (only where the stack allows it).
    disable_copies_with_source: Option<bool>,
    /// IN_USE_DAYS for this rule's copies.
    in_use_days: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    #[serde(default)]
    tags: BTreeMap<String, OneOrMany>,
    name: Option<String>,
    owners: Option<Vec<String>>,
    #[serde(default)]
    regions: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawShare {
    #[serde(default)]
    accounts: Vec<String>,
    #[serde(default)]
    organizations: Vec<String>,
    #[serde(default)]
    ous: Vec<String>,
    copy_source_permissions: Option<bool>,
    allow_public: Option<bool>,
    /// SHARE_SNAPSHOTS.
    snapshots: Option<bool>,
}

/// The rules of a document, and the role of every target account they name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub roles: BTreeMap<AccountId, String>,
}

/// Parses and validates a REPLICATION_RULES document. `defaults` is what a rule's unset treatment fields take
/// (the treatment variables: ENCRYPT_COPIES, SHARE_WITH_*, EXTRA_TAGS, ...). Every problem is returned, each
/// starting with `REPLICATION_RULES` and naming its rule and field.
pub fn parse_document(doc: &str, defaults: &Treatment) -> Result<RuleSet, Vec<String>> {
    let mut problems = Vec::new();
    let document: Document = match serde_json::from_str(doc) {
        Ok(d) => d,
        Err(e) => return Err(vec![format!("REPLICATION_RULES: not a rules document ({{\"rules\": [...]}}): {e}")]),
    };
    if document.rules.is_empty() {
        problems.push("REPLICATION_RULES: no rules: at least one is needed".to_string());
    }
    let mut rules = Vec::new();
    let mut roles: BTreeMap<AccountId, (String, String)> = BTreeMap::new();
    for (i, value) in document.rules.into_iter().enumerate() {
        let label = value.get("name").and_then(Value::as_str).map_or(format!("#{}", i + 1), |n| format!("{n:?}"));
        let raw: RawRule = match serde_json::from_value(value) {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("REPLICATION_RULES rule {label}: {e}"));
                continue;
            }
        };
        let mut p = |field: &str, e: String| problems.push(format!("REPLICATION_RULES rule {label} {field}: {e}"));
        if !ruleset::valid_name(&raw.name) {
            p("name", "1-64 letters, digits, '-', '_' or '.'".into());
        }
        if rules.iter().any(|r: &Rule| r.name == raw.name) {
            p("name", "another rule has this name".into());
        }
        let (rule, rule_roles) = build(raw, defaults, &mut p);
        for (account, role) in rule_roles {
            match roles.get(&account) {
                Some((other_role, other)) if other_role != &role => p(
                    "accounts",
                    format!("account {account} has role {role} here and {other_role} in rule {other:?}: one role per account"),
                ),
                _ => {
                    roles.insert(account, (role, rule.name.clone()));
                }
            }
        }
        rules.push(rule);
    }
    for (later, earlier) in ruleset::shadowed(&rules) {
        problems.push(format!(
            "REPLICATION_RULES rule {later:?} match: rule {earlier:?} comes first and matches every image this one \
             matches, so this rule would never apply (put it first, or narrow the earlier one)"
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(RuleSet { rules, roles: roles.into_iter().map(|(a, (role, _))| (a, role)).collect() })
}

fn build(raw: RawRule, defaults: &Treatment, p: &mut impl FnMut(&str, String)) -> (Rule, Vec<(AccountId, String)>) {
    let mut matcher = Match::default();
    for (key, values) in raw.matcher.tags {
        let values = match values {
            OneOrMany::One(v) => vec![v],
            OneOrMany::Many(v) => v,
        };
        if key.is_empty() || values.is_empty() {
            p("match.tags", format!("{key:?}: a key and at least one value"));
        }
        matcher.tags.push(TagMatch { key, values });
    }
    if let Some(name) = raw.matcher.name {
        match glob::Pattern::new(&name) {
            Ok(pattern) => matcher.name = Some(pattern),
            Err(e) => p("match.name", format!("{name:?} is not a glob: {e}")),
        }
    }
    if let Some(owners) = raw.matcher.owners {
        matcher.this_account = owners.iter().any(|o| o == "self");
        for owner in owners.iter().filter(|o| *o != "self") {
            match AccountId::parse(owner) {
                Ok(a) => matcher.owners.push(a),
                Err(e) => p("match.owners", format!("{e} (or \"self\")")),
            }
        }
        if !matcher.this_account && matcher.owners.is_empty() {
            p("match.owners", "no owner: name \"self\" or account ids (or leave it out for \"self\")".into());
        }
    }
    for region in &raw.matcher.regions {
        match Region::parse(region) {
            Ok(r) => matcher.regions.push(r),
            Err(e) => p("match.regions", e.to_string()),
        }
    }
    let mut t = defaults.clone();
    t.target_regions.clear();
    t.target_accounts.clear();
    t.encryption.kms_keys.clear();
    for region in &raw.regions {
        match Region::parse(region) {
            Ok(r) if !t.target_regions.contains(&r) => t.target_regions.push(r),
            Ok(_) => {}
            Err(e) => p("regions", e.to_string()),
        }
    }
    let mut roles = Vec::new();
    for (account, role) in &raw.accounts {
        if role.trim().is_empty() {
            p("accounts", format!("account {account} has no role: give the role ARN the replicator assumes there"));
            continue;
        }
        match parse_target_account(&format!("{account}={role}")) {
            Ok((a, role)) => {
                t.target_accounts.push(a.clone());
                roles.push((a, role));
            }
            Err(e) => p("accounts", e),
        }
    }
    if t.target_regions.is_empty() && t.target_accounts.is_empty() {
        p("regions", "no destination: name regions, accounts, or both".into());
    }
    if let Some(encrypt) = raw.encrypt {
        t.encryption.encrypt_copies = encrypt;
    }
    for (place, key) in &raw.kms_keys {
        match parse_kms_entry(&format!("{place}={key}"), &t.target_regions, &t.target_accounts) {
            Ok((place, key)) => {
                t.encryption.kms_keys.insert(place, key);
            }
            Err(e) => {
                p("kms_keys", e.replace("TARGET_REGIONS", "its regions").replace("TARGET_ACCOUNTS", "its accounts"))
            }
        }
    }
    t.launch_templates.clear();
    for (place, template) in &raw.launch_templates {
        match parse_template_entry(&format!("{place}={template}"), &t.target_regions, &t.target_accounts) {
            Ok((place, template)) => {
                t.launch_templates.insert(place, template);
            }
            Err(e) => p(
                "launch_templates",
                e.replace("TARGET_REGIONS", "its regions").replace("TARGET_ACCOUNTS", "its accounts"),
            ),
        }
    }
    if let Some(set_default) = raw.launch_template_set_default {
        t.launch_template_set_default = set_default;
    }
    if let Some(follow) = raw.disable_copies_with_source {
        if follow && !t.disable_copies_with_source {
            p(
                "disable_copies_with_source",
                "DISABLE_COPIES_WITH_SOURCE (the stack's DisableCopiesWithSource) is false, so the policy does not \
                 allow DisableImage and EnableImage: set it to true (rules can then opt out with false)"
                    .into(),
            );
        }
        t.disable_copies_with_source = follow;
    }
    if let Some(days) = raw.in_use_days {
        if days > 3650 {
            p("in_use_days", format!("{days} is more than 3650 (ten years)"));
        }
        t.in_use_days = days.min(3650);
    }
    if let Some(share) = raw.share {
        share_of(share, &mut t, p);
    }
    if let Some(template) = raw.description {
        for placeholder in placeholders(&template) {
            if !DESCRIPTION_PLACEHOLDERS.contains(&placeholder) {
                p(
                    "description",
                    format!("unknown placeholder {placeholder} (known: {})", DESCRIPTION_PLACEHOLDERS.join(", ")),
                );
            }
        }
        t.description_template = Some(template);
    }
    if let Some(tags) = raw.tags {
        t.extra_tags.clear();
        for (key, value) in tags {
            match parse_extra_tag(&format!("{key}={value}")) {
                Ok(tag) => t.extra_tags.push(tag),
                Err(e) => p("tags", e),
            }
        }
    }
    if let Some(template) = raw.ssm_parameter {
        if let Err(e) = crate::core::parameters::check_template(&template) {
            p("ssm_parameter", e.to_string());
        }
        t.ssm_parameter_template = Some(template);
    }
    if let Some(m) = raw.completion_minutes {
        if !(15..=2880).contains(&m) || m % 15 != 0 {
            p("completion_minutes", format!("{m} is not 15..2880 in steps of 15"));
        }
        t.copy_completion_minutes = Some(m);
    }
    if raw.retain_copies.is_some() || raw.family_tag.is_some() || raw.retain_dry_run.is_some() {
        let base = t.retention.clone();
        if base.is_none() && raw.retain_copies.is_some_and(|n| n > 0) {
            p(
                "retain_copies",
                "RETAIN_COPIES (the stack's RetainCopies) is unset, so the policy does not allow retiring copies: set \
                 it (rules can then opt out with 0 or keep another number)"
                    .into(),
            );
        }
        let copies = raw.retain_copies.or(base.as_ref().map(|b| b.copies)).unwrap_or(0);
        let family_tag = raw.family_tag.clone().or(base.as_ref().map(|b| b.family_tag.clone()));
        let dry_run = raw.retain_dry_run.or(base.as_ref().map(|b| b.dry_run)).unwrap_or(false);
        t.retention = match (copies, family_tag) {
            (0, _) => None,
            (copies, Some(family_tag)) if !family_tag.trim().is_empty() && copies <= 1000 => {
                Some(Retention { copies, family_tag, dry_run })
            }
            (copies, Some(_)) if copies > 1000 => {
                p("retain_copies", format!("{copies} is more than 1000"));
                None
            }
            _ => {
                p("family_tag", "retain_copies needs the tag that names a copy's family (family_tag here, or FAMILY_TAG with RETAIN_COPIES)".into());
                None
            }
        };
    }
    (Rule { name: raw.name, matcher, treatment: t }, roles)
}

fn share_of(share: RawShare, t: &mut Treatment, p: &mut impl FnMut(&str, String)) {
    t.share.extra.clear();
    for account in &share.accounts {
        match AccountId::parse(account) {
            Ok(a) => t.share.extra.push(LaunchPermission::Account(a)),
            Err(e) => p("share.accounts", e.to_string()),
        }
    }
    for org in &share.organizations {
        match OrganizationArn::parse(org) {
            Ok(a) => t.share.extra.push(LaunchPermission::Organization(a)),
            Err(e) => p("share.organizations", e.to_string()),
        }
    }
    for ou in &share.ous {
        match OuArn::parse(ou) {
            Ok(a) => t.share.extra.push(LaunchPermission::OrganizationalUnit(a)),
            Err(e) => p("share.ous", e.to_string()),
        }
    }
    if let Some(copy) = share.copy_source_permissions {
        t.share.copy_source_permissions = copy;
    }
    if let Some(allow) = share.allow_public {
        t.share.allow_public = allow;
    }
    if let Some(snapshots) = share.snapshots {
        if snapshots && !t.share_snapshots {
            p(
                "share.snapshots",
                "SHARE_SNAPSHOTS (the stack's ShareSnapshots) is false, so the policy does not allow \
               sharing snapshots: set it to true (rules can then opt out with \"snapshots\": false)"
                    .into(),
            );
        }
        t.share_snapshots = snapshots;
    }
}

#[cfg(test)]
#[path = "config_rules_tests.rs"]
mod tests;
