//! What the whole deployment must agree on besides the rules: the variables the rules replace, what the rules
//! cover together, where the policy allows writes.

use crate::core::ids::{AccountId, Region};
use crate::core::replication_rules::{Rule, RuleSettings};

/// The rules' destination regions that ALLOWED_REGIONS (the template's TargetRegions, where the policy allows EC2
/// writes) does not list, as problems. Unset: not checked.
pub(super) fn outside_allowed_regions(rules: &[Rule], allowed: &[Region]) -> Vec<String> {
    if allowed.is_empty() {
        return Vec::new();
    }
    let mut problems = Vec::new();
    for rule in rules {
        for region in rule.settings.target_regions.iter().filter(|r| !allowed.contains(r)) {
            problems.push(format!(
                "REPLICATION_RULES rule {:?} regions: {region} is not in ALLOWED_REGIONS (the stack's TargetRegions): \
                 the policy denies EC2 writes there; add it to TargetRegions",
                rule.name
            ));
        }
    }
    problems
}

/// The rules' source regions (`match.regions`) that are not source regions of the deployment (SOURCE_REGIONS,
/// default the function's region), as problems: the sweep lists only those, events of other regions are refused
/// and the policy allows writes (grants on sources) only there. No source region known (offline): not checked.
pub(super) fn outside_source_regions(rules: &[Rule], sources: &[Region]) -> Vec<String> {
    if sources.is_empty() {
        return Vec::new();
    }
    let mut problems = Vec::new();
    for rule in rules {
        for region in rule.matcher.regions.iter().filter(|r| !sources.contains(r)) {
            problems.push(format!(
                "REPLICATION_RULES rule {:?} match.regions: {region} is not a source region of this deployment \
                 (SOURCE_REGIONS, default the function's region)",
                rule.name
            ));
        }
    }
    problems
}

/// Variables that say what the rules say: with REPLICATION_RULES they are refused. The treatment variables
/// (ENCRYPT_COPIES, SHARE_WITH_*, EXTRA_TAGS, ...) are the defaults of every rule's unset fields.
pub const RULE_VARIABLES: &[&str] = &[
    "TARGET_REGIONS",
    "TARGET_ACCOUNTS",
    "KMS_KEY_IDS",
    "IMAGE_TAG_FILTER",
    "TRUSTED_SOURCE_ACCOUNTS",
    "LAUNCH_TEMPLATES",
];

/// With rules, what the whole deployment covers (what a message is first checked against, what the sweep lists,
/// where a deregistered source's copies are looked for): every rule's regions, accounts, owners and source
/// regions; encryption required only if every rule requires it. Each job then uses its own rule.
pub(super) fn union_of(rules: &[Rule], mut all: RuleSettings) -> (RuleSettings, Vec<AccountId>) {
    let mut owners = Vec::new();
    all.encryption.encrypt_copies = rules.iter().all(|r| r.settings.encryption.encrypt_copies);
    for rule in rules {
        let t = &rule.settings;
        // Where a copy's rule is not known (a deregistered source's copies), the longest window keeps it.
        all.in_use_days = all.in_use_days.max(t.in_use_days);
        all.target_regions
            .extend(t.target_regions.iter().filter(|r| !all.target_regions.contains(r)).cloned().collect::<Vec<_>>());
        all.target_accounts
            .extend(t.target_accounts.iter().filter(|a| !all.target_accounts.contains(a)).cloned().collect::<Vec<_>>());
        owners.extend(rule.matcher.owners.iter().filter(|o| !owners.contains(*o)).cloned().collect::<Vec<_>>());
    }
    (all, owners)
}
