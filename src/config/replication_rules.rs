//! REPLICATION_RULES: the document of named rules, validated at start-up with every problem named by rule and
//! field. The `rules check` command of the command-line tool runs the same code.

use super::rule::{self, DocumentRule};
use crate::core::ids::{AccountId, Region};
use crate::core::replication_rules::{self, Match, Rule, RuleSettings, TagMatch};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The document: `{"rules": [RULE, ...]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    rules: Vec<Value>,
}

/// A rule's `match`.
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

/// The rules of a document, and the role of every target account they name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub roles: BTreeMap<AccountId, String>,
}

/// Parses and validates a REPLICATION_RULES document. `stack` is the environment's one rule: what a rule's unset
/// settings take (ENCRYPT_COPIES, SHARE_WITH_*, EXTRA_TAGS, ...) and what the stack's policy allows. Every problem
/// is returned, each starting with `REPLICATION_RULES` and naming its rule and key.
pub fn parse_document(doc: &str, stack: &RuleSettings) -> Result<RuleSet, Vec<String>> {
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
        let label = format!("rule {label}");
        let Value::Object(mut fields) = value else {
            problems.push(format!("REPLICATION_RULES {label}: not an object"));
            continue;
        };
        let name = fields.remove("name").and_then(|n| n.as_str().map(String::from));
        let matcher = fields.remove("match").unwrap_or(Value::Object(Default::default()));
        let mut p = |key: &str, e: String| problems.push(format!("REPLICATION_RULES {label} {key}: {e}"));
        let name = match name {
            Some(name) if replication_rules::valid_name(&name) => name,
            Some(name) => {
                p("name", "1-64 letters, digits, '-', '_' or '.'".into());
                name
            }
            None => {
                p("name", "missing: every rule has a name".into());
                String::new()
            }
        };
        if rules.iter().any(|r: &Rule| r.name == name) {
            p("name", "another rule has this name".into());
        }
        let matcher = match serde_json::from_value::<RawMatch>(matcher) {
            Ok(raw) => matcher_of(raw, &mut p),
            Err(e) => {
                p("match", e.to_string());
                Match::default()
            }
        };
        let mut source = DocumentRule { fields, label: label.clone(), problems: &mut problems };
        let (settings, rule_roles) = rule::read(&mut source, stack);
        source.finish();
        let mut p = |key: &str, e: String| problems.push(format!("REPLICATION_RULES {label} {key}: {e}"));
        if settings.target_regions.is_empty() && settings.target_accounts.is_empty() {
            p("regions", "no destination: name regions, accounts, or both".into());
        }
        for (key, why) in rule::stack_refusals(&settings, stack) {
            p(key, why);
        }
        for (account, role) in rule_roles {
            match roles.get(&account) {
                Some((other_role, other)) if other_role != &role => p(
                    "accounts",
                    format!("account {account} has role {role} here and {other_role} in rule {other:?}: one role per account"),
                ),
                _ => {
                    roles.insert(account, (role, name.clone()));
                }
            }
        }
        rules.push(Rule { name, matcher, settings });
    }
    for (later, earlier) in replication_rules::shadowed(&rules) {
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

fn matcher_of(raw: RawMatch, p: &mut impl FnMut(&str, String)) -> Match {
    let mut matcher = Match::default();
    for (key, values) in raw.tags {
        let values = match values {
            OneOrMany::One(v) => vec![v],
            OneOrMany::Many(v) => v,
        };
        if key.is_empty() || values.is_empty() {
            p("match.tags", format!("{key:?}: a key and at least one value"));
        }
        matcher.tags.push(TagMatch { key, values });
    }
    if let Some(name) = raw.name {
        match glob::Pattern::new(&name) {
            Ok(pattern) => matcher.name = Some(pattern),
            Err(e) => p("match.name", format!("{name:?} is not a glob: {e}")),
        }
    }
    if let Some(owners) = raw.owners {
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
    for region in &raw.regions {
        match Region::parse(region) {
            Ok(r) => matcher.regions.push(r),
            Err(e) => p("match.regions", e.to_string()),
        }
    }
    matcher
}
