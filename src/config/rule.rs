//! One rule's settings ([`RuleSettings`]), read and validated in one place from either source: a rule of a
//! REPLICATION_RULES document, or the environment, whose variables are a one-rule document (the variable of a key
//! is the key in capitals, `share.snapshots` is SHARE_SNAPSHOTS, except the older names of [`VARIABLES`]). Every
//! problem is named by the rule and key, or by the variable.
//!
//! A new per-rule setting is its field in [`RuleSettings`] (with its doc), its line in [`read`] (its key and
//! validation), and its use. `read` builds the settings with every field named, so a field it forgets does not
//! compile.

use super::entries::{parse_extra_tag, parse_kms_entry, parse_target_account, parse_template_entry, placeholders};
use crate::core::copy_rules::{EncryptionSettings, DESCRIPTION_PLACEHOLDERS};
use crate::core::ids::{AccountId, OrganizationArn, OuArn, Region};
use crate::core::image::LaunchPermission;
use crate::core::replication_rules::RuleSettings;
use crate::core::retention::Retention;
use crate::core::share::ShareSettings;
use serde_json::{Map, Value};

/// The variables whose name is not their key in capitals: (variable, key).
pub const VARIABLES: &[(&str, &str)] = &[
    ("TARGET_REGIONS", "regions"),
    ("TARGET_ACCOUNTS", "accounts"),
    ("ENCRYPT_COPIES", "encrypt"),
    ("KMS_KEY_IDS", "kms_keys"),
    ("COPY_SOURCE_LAUNCH_PERMISSIONS", "share.copy_source_permissions"),
    ("SHARE_WITH_ACCOUNTS", "share.accounts"),
    ("SHARE_WITH_ORGANIZATION_ARNS", "share.organizations"),
    ("SHARE_WITH_OU_ARNS", "share.ous"),
    ("ALLOW_PUBLIC", "share.allow_public"),
    ("SHARE_SNAPSHOTS", "share.snapshots"),
    ("COPY_DESCRIPTION_TEMPLATE", "description"),
    ("EXTRA_TAGS", "tags"),
    ("SSM_PARAMETER_TEMPLATE", "ssm_parameter"),
    ("COPY_COMPLETION_MINUTES", "completion_minutes"),
];

/// The environment variable of a rule's key.
pub fn variable_of(key: &str) -> String {
    match VARIABLES.iter().find(|(_, k)| *k == key) {
        Some((variable, _)) => variable.to_string(),
        None => key.replace('.', "_").to_ascii_uppercase(),
    }
}

/// A flag as a variable writes it: true, 1, yes or false, 0, no (any case).
pub(super) fn parse_flag(raw: &str) -> Option<bool> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Where a rule's settings are read from.
pub trait RuleSource {
    /// The value of `key` (`share.snapshots` for a nested one), taken: a document's keys left untaken are unknown.
    fn take(&mut self, key: &str) -> Option<Value>;
    /// Whether `key` (an object such as `share`) is given at all.
    fn present(&self, key: &str) -> bool;
    /// Records a problem with `key`'s value.
    fn problem(&mut self, key: &str, message: String);
}

/// The environment as a one-rule document: a key's value is its variable's (trimmed; blank is unset).
pub struct Environment<'a> {
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    pub problems: &'a mut Vec<String>,
}

impl RuleSource for Environment<'_> {
    fn take(&mut self, key: &str) -> Option<Value> {
        let value = (self.lookup)(&variable_of(key))?.trim().to_string();
        (!value.is_empty()).then_some(Value::String(value))
    }

    fn present(&self, _key: &str) -> bool {
        false
    }

    fn problem(&mut self, key: &str, message: String) {
        self.problems.push(format!("{}: {message}", variable_of(key)));
    }
}

/// One rule of a REPLICATION_RULES document (its `name` and `match` already taken).
pub struct DocumentRule<'a> {
    pub fields: Map<String, Value>,
    /// `rule "NAME"` (or `#N` without a name), for problems.
    pub label: String,
    pub problems: &'a mut Vec<String>,
}

impl DocumentRule<'_> {
    /// The keys no reading took: unknown, each a problem.
    pub fn finish(mut self) {
        let mut left: Vec<String> = Vec::new();
        for (key, value) in std::mem::take(&mut self.fields) {
            match value {
                Value::Object(inner) if key == "share" => left.extend(inner.keys().map(|k| format!("share.{k}"))),
                _ => left.push(key),
            }
        }
        for key in left {
            self.problems.push(format!("REPLICATION_RULES {}: unknown field `{key}`", self.label));
        }
    }
}

impl RuleSource for DocumentRule<'_> {
    fn take(&mut self, key: &str) -> Option<Value> {
        match key.split_once('.') {
            None => self.fields.remove(key),
            Some((outer, inner)) => {
                let Some(Value::Object(object)) = self.fields.get_mut(outer) else { return None };
                let value = object.remove(inner);
                if object.is_empty() {
                    self.fields.remove(outer);
                }
                value
            }
        }
    }

    fn present(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }

    fn problem(&mut self, key: &str, message: String) {
        // Entries are checked against the rule's own regions and accounts.
        let message = message.replace("TARGET_REGIONS", "its regions").replace("TARGET_ACCOUNTS", "its accounts");
        self.problems.push(format!("REPLICATION_RULES {} {key}: {message}", self.label));
    }
}

/// Reads typed values from a source, each problem named by its key.
struct Reader<'a, S: RuleSource + ?Sized> {
    source: &'a mut S,
}

impl<S: RuleSource + ?Sized> Reader<'_, S> {
    fn flag(&mut self, key: &str) -> Option<bool> {
        match self.source.take(key)? {
            Value::Bool(b) => Some(b),
            Value::String(s) => parse_flag(&s).or_else(|| {
                self.source.problem(key, format!("{s:?} is not true or false"));
                None
            }),
            other => {
                self.source.problem(key, format!("{other} is not true or false"));
                None
            }
        }
    }

    fn number(&mut self, key: &str, range: std::ops::RangeInclusive<u32>) -> Option<u32> {
        let value = self.source.take(key)?;
        let n = match &value {
            Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            Value::String(s) => s.parse::<u32>().ok(),
            _ => None,
        };
        match n.filter(|n| range.contains(n)) {
            Some(n) => Some(n),
            None => {
                let (lo, hi) = (range.start(), range.end());
                self.source.problem(key, format!("{value} is not a whole number from {lo} to {hi}"));
                None
            }
        }
    }

    fn text(&mut self, key: &str) -> Option<String> {
        match self.source.take(key)? {
            Value::String(s) => Some(s),
            other => {
                self.source.problem(key, format!("{other} is not a string"));
                None
            }
        }
    }

    /// A list: an array of strings, or a comma-separated string. `None`: not given.
    fn list(&mut self, key: &str) -> Option<Vec<String>> {
        match self.source.take(key)? {
            Value::String(s) => Some(s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect()),
            Value::Array(items) => {
                let strings: Vec<String> = items.iter().filter_map(|v| v.as_str().map(String::from)).collect();
                if strings.len() != items.len() {
                    self.source.problem(key, "a list of strings".into());
                }
                Some(strings)
            }
            other => {
                self.source.problem(key, format!("{other} is not a list"));
                None
            }
        }
    }

    /// `NAME=VALUE` entries: an object's, or a comma-separated string's. `None`: not given.
    fn entries(&mut self, key: &str) -> Option<Vec<String>> {
        match self.source.take(key)? {
            Value::Object(map) => Some(
                map.into_iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), String::from)))
                    .collect(),
            ),
            Value::String(s) => Some(s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect()),
            other => {
                self.source.problem(key, format!("{other} is not an object of NAME: VALUE"));
                None
            }
        }
    }

    /// Each entry of `key` parsed, the failures named.
    fn parsed<T>(&mut self, key: &str, entries: Vec<String>, parse: impl Fn(&str) -> Result<T, String>) -> Vec<T> {
        let mut out = Vec::new();
        for entry in entries {
            match parse(&entry) {
                Ok(v) => out.push(v),
                Err(e) => self.source.problem(key, e),
            }
        }
        out
    }

    fn problem(&mut self, key: &str, message: String) {
        self.source.problem(key, message);
    }
}

/// The settings a source gives on top of `base` (the environment's for a rule; the variables' defaults for the
/// environment), and the role of each target account it names. Where a rule names its places (regions, accounts,
/// keys and templates per place), nothing of `base`'s is kept.
pub fn read(source: &mut dyn RuleSource, base: &RuleSettings) -> (RuleSettings, Vec<(AccountId, String)>) {
    let mut r = Reader { source };
    let region_names = r.list("regions").unwrap_or_default();
    let mut target_regions: Vec<Region> = Vec::new();
    for region in r.parsed("regions", region_names, |s| Region::parse(s).map_err(|e| e.to_string())) {
        if !target_regions.contains(&region) {
            target_regions.push(region);
        }
    }
    let accounts = r.entries("accounts").unwrap_or_default();
    let roles: Vec<(AccountId, String)> = r.parsed("accounts", accounts, |entry| match entry.split_once('=') {
        Some((account, role)) if role.trim().is_empty() => {
            Err(format!("account {account} has no role: give the role ARN the replicator assumes there"))
        }
        _ => parse_target_account(entry),
    });
    let target_accounts: Vec<AccountId> = roles.iter().map(|(a, _)| a.clone()).collect();
    let kms = r.entries("kms_keys").unwrap_or_default();
    let kms_keys = r.parsed("kms_keys", kms, |e| parse_kms_entry(e, &target_regions, &target_accounts));
    let templates = r.entries("launch_templates").unwrap_or_default();
    let launch_templates =
        r.parsed("launch_templates", templates, |e| parse_template_entry(e, &target_regions, &target_accounts));
    let description_template = r.text("description").or_else(|| base.description_template.clone());
    for placeholder in description_template.as_deref().map(placeholders).unwrap_or_default() {
        if !DESCRIPTION_PLACEHOLDERS.contains(&placeholder) {
            let known = DESCRIPTION_PLACEHOLDERS.join(", ");
            r.problem("description", format!("unknown placeholder {placeholder} (known: {known})"));
        }
    }
    let extra_tags = match r.entries("tags") {
        Some(tags) => r.parsed("tags", tags, parse_extra_tag),
        None => base.extra_tags.clone(),
    };
    let ssm_parameter_template = r.text("ssm_parameter").or_else(|| base.ssm_parameter_template.clone());
    if let Some(Err(e)) = ssm_parameter_template.as_deref().map(crate::core::parameters::check_template) {
        r.problem("ssm_parameter", e.to_string());
    }
    let copy_completion_minutes = r.number("completion_minutes", 0..=u32::MAX).or(base.copy_completion_minutes);
    if let Some(m) = copy_completion_minutes.filter(|m| !(15..=2880).contains(m) || m % 15 != 0) {
        r.problem("completion_minutes", format!("{m} is not 15..2880 in steps of 15"));
    }
    let settings = RuleSettings {
        encryption: EncryptionSettings {
            encrypt_copies: r.flag("encrypt").unwrap_or(base.encryption.encrypt_copies),
            kms_keys: kms_keys.into_iter().collect(),
        },
        share: share(&mut r, &base.share),
        share_snapshots: r.flag("share.snapshots").unwrap_or(base.share_snapshots),
        retention: retention(&mut r, base.retention.as_ref()),
        launch_templates: launch_templates.into_iter().collect(),
        launch_template_set_default: r.flag("launch_template_set_default").unwrap_or(base.launch_template_set_default),
        disable_copies_with_source: r.flag("disable_copies_with_source").unwrap_or(base.disable_copies_with_source),
        in_use_days: r.number("in_use_days", 0..=3650).unwrap_or(base.in_use_days),
        target_regions,
        target_accounts,
        description_template,
        extra_tags,
        ssm_parameter_template,
        copy_completion_minutes,
    };
    (settings, roles)
}

/// `share`: the grants are the given lists (any of them, or a `share` object, replaces `base`'s); the flags
/// override `base`'s one by one.
fn share<S: RuleSource + ?Sized>(r: &mut Reader<'_, S>, base: &ShareSettings) -> ShareSettings {
    let given = r.source.present("share");
    let accounts = r.list("share.accounts");
    let organizations = r.list("share.organizations");
    let ous = r.list("share.ous");
    let extra = if given || accounts.is_some() || organizations.is_some() || ous.is_some() {
        let mut extra = Vec::new();
        let parse = |s: &str| AccountId::parse(s).map(LaunchPermission::Account).map_err(|e| e.to_string());
        extra.extend(r.parsed("share.accounts", accounts.unwrap_or_default(), parse));
        let parse = |s: &str| OrganizationArn::parse(s).map(LaunchPermission::Organization).map_err(|e| e.to_string());
        extra.extend(r.parsed("share.organizations", organizations.unwrap_or_default(), parse));
        let parse = |s: &str| OuArn::parse(s).map(LaunchPermission::OrganizationalUnit).map_err(|e| e.to_string());
        extra.extend(r.parsed("share.ous", ous.unwrap_or_default(), parse));
        extra
    } else {
        base.extra.clone()
    };
    ShareSettings {
        copy_source_permissions: r.flag("share.copy_source_permissions").unwrap_or(base.copy_source_permissions),
        extra,
        allow_public: r.flag("share.allow_public").unwrap_or(base.allow_public),
    }
}

/// `retain_copies` (0: keep every copy), `family_tag` and `retain_dry_run`, each over `base`'s.
fn retention<S: RuleSource + ?Sized>(r: &mut Reader<'_, S>, base: Option<&Retention>) -> Option<Retention> {
    let copies = r.number("retain_copies", 0..=1000).or(base.map(|b| b.copies)).unwrap_or(0);
    let family_tag = r.text("family_tag").or(base.map(|b| b.family_tag.clone())).filter(|t| !t.trim().is_empty());
    let dry_run = r.flag("retain_dry_run").or(base.map(|b| b.dry_run)).unwrap_or(false);
    match (copies, family_tag) {
        (0, _) => None,
        (copies, Some(family_tag)) => Some(Retention { copies, family_tag, dry_run }),
        (copies, None) => {
            r.problem(
                "retain_copies",
                "needs FAMILY_TAG (a rule's family_tag): the tag whose value names an image's family".into(),
            );
            // Asked for all the same: what the stack allows is judged too (the configuration is refused anyway).
            Some(Retention { copies, family_tag: String::new(), dry_run })
        }
    }
}

/// What a rule asks for that the stack's policy does not allow: the stack's IAM grants DisableImage and
/// EnableImage, sharing snapshots and retiring copies only where its own setting (the environment's, `stack`)
/// turns them on. The one check of "the stack allows it"; each refusal is named by the rule's key.
pub fn stack_refusals(rule: &RuleSettings, stack: &RuleSettings) -> Vec<(&'static str, String)> {
    let refusals = [
        (
            "disable_copies_with_source",
            rule.disable_copies_with_source && !stack.disable_copies_with_source,
            "DISABLE_COPIES_WITH_SOURCE (the stack's DisableCopiesWithSource) is false, so the policy does not allow \
             DisableImage and EnableImage: set it to true (rules can then opt out with false)",
        ),
        (
            "share.snapshots",
            rule.share_snapshots && !stack.share_snapshots,
            "SHARE_SNAPSHOTS (the stack's ShareSnapshots) is false, so the policy does not allow sharing snapshots: \
             set it to true (rules can then opt out with \"snapshots\": false)",
        ),
        (
            "retain_copies",
            rule.retention.is_some() && stack.retention.is_none(),
            "RETAIN_COPIES (the stack's RetainCopies) is unset, so the policy does not allow retiring copies: set it \
             (rules can then opt out with 0 or keep another number)",
        ),
    ];
    refusals.into_iter().filter(|(_, refused, _)| *refused).map(|(key, _, why)| (key, why.to_string())).collect()
}
