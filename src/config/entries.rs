//! The entries of list variables and rule fields: KMS keys, target accounts' roles, extra tags, template
//! placeholders. Each names what is wrong with an entry.

use crate::core::ids::{AccountId, Place, Region};
use crate::core::image::Tag;

/// `REGION=KEY` (this account) or `ACCOUNT/REGION=KEY` (a target account) of KMS_KEY_IDS. This account's region
/// must be a destination; a target account's account must be in TARGET_ACCOUNTS (any region: target accounts
/// get copies in the source region too). A key ARN must belong to that region (a KMS key belongs to one region)
/// and, for a target account, to that account. Key ids, `mrk-` ids and `alias/...` names are accepted as they are.
pub(super) fn parse_kms_entry(
    entry: &str,
    destinations: &[Region],
    targets: &[AccountId],
) -> Result<(Place, String), String> {
    let (place, key) =
        entry.split_once('=').ok_or_else(|| format!("{entry:?} is not REGION=KEY or ACCOUNT/REGION=KEY"))?;
    let Place { account, region } = configured_place(place, destinations, targets, "a key")?;
    let key = key.trim().to_string();
    if let Some(rest) = key.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        match parts.as_slice() {
            [_, "kms", key_region, key_account, resource]
                if resource.starts_with("key/") || resource.starts_with("alias/") =>
            {
                if *key_region != region.as_str() {
                    return Err(format!(
                        "the key for {region} is a key of {key_region} ({key}); a KMS key belongs to one region"
                    ));
                }
                if let Some(a) = account.as_ref().filter(|a| a.as_str() != *key_account) {
                    return Err(format!(
                        "the key for account {a} in {region} belongs to account {key_account} ({key}); a target \
                         account's copies are encrypted with a key of its own"
                    ));
                }
            }
            _ => return Err(format!("{key:?} is not a KMS key or alias ARN")),
        }
    } else {
        let id_like = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let valid = key.strip_prefix("alias/").is_some_and(|a| !a.is_empty()) || id_like(&key);
        if !valid {
            return Err(format!("{key:?} is not a key id, alias/NAME or key ARN"));
        }
    }
    Ok((Place::new(account, region), key))
}

/// `ACCOUNT=ROLE_ARN` of TARGET_ACCOUNTS (or the role ARN alone): the role must be an IAM role of that account.
pub(super) fn parse_target_account(entry: &str) -> Result<(AccountId, String), String> {
    let (account, role) = match entry.split_once('=') {
        Some((a, r)) => (Some(a.trim()), r.trim()),
        None => (None, entry.trim()),
    };
    let parts: Vec<&str> = role.splitn(6, ':').collect();
    let role_account = match parts.as_slice() {
        ["arn", partition, "iam", "", role_account, resource]
            if partition.starts_with("aws") && resource.strip_prefix("role/").is_some_and(|n| !n.is_empty()) =>
        {
            AccountId::parse(role_account).map_err(|e| e.to_string())?
        }
        _ => return Err(format!("{role:?} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")),
    };
    if let Some(account) = account {
        let account = AccountId::parse(account).map_err(|e| e.to_string())?;
        if account != role_account {
            return Err(format!("the role for account {account} belongs to account {role_account} ({role})"));
        }
    }
    Ok((role_account, role.to_string()))
}

/// `KEY=VALUE` of EXTRA_TAGS; keys reserved by AWS or by the product's provenance are refused.
pub(super) fn parse_extra_tag(entry: &str) -> Result<Tag, String> {
    let (key, value) = entry.split_once('=').ok_or_else(|| format!("{entry:?} is not KEY=VALUE"))?;
    let key = key.trim();
    if key.is_empty() || key.len() > 128 || value.len() > 256 {
        return Err(format!("{entry:?}: keys are 1-128 characters, values at most 256"));
    }
    if key.starts_with("aws:") || key.starts_with("ami-replicator:") {
        return Err(format!("{key:?}: the prefixes aws: and ami-replicator: are reserved"));
    }
    Ok(Tag::new(key, value.trim()))
}

/// The `{...}` placeholders of a template.
pub(super) fn placeholders(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        match rest[start..].find('}') {
            Some(end) => {
                out.push(&rest[start..start + end + 1]);
                rest = &rest[start + end + 1..];
            }
            None => {
                out.push(&rest[start..]);
                break;
            }
        }
    }
    out
}

/// `REGION=TEMPLATE` (this account) or `ACCOUNT/REGION=TEMPLATE` (a target account) of LAUNCH_TEMPLATES: a
/// launch template id (`lt-...`) or name, at a place the configuration has (as for KMS_KEY_IDS).
pub(super) fn parse_template_entry(
    entry: &str,
    destinations: &[Region],
    targets: &[AccountId],
) -> Result<(Place, String), String> {
    let (place, template) =
        entry.split_once('=').ok_or_else(|| format!("{entry:?} is not REGION=TEMPLATE or ACCOUNT/REGION=TEMPLATE"))?;
    let place = configured_place(place, destinations, targets, "a launch template")?;
    let template = template.trim();
    let name_like = (3..=128).contains(&template.len())
        && template.bytes().all(|b| b.is_ascii_alphanumeric() || b"().-/_".contains(&b));
    if !name_like {
        return Err(format!(
            "{template:?} is not a launch template id (lt-...) or name (3-128 of A-Z a-z 0-9 ( ) . - / _)"
        ));
    }
    Ok((place, template.to_string()))
}

/// `REGION` (this account: a destination) or `ACCOUNT/REGION` (a target account, any region: its copies include
/// the source region) of a per-place entry; `what` names the entry in the error.
fn configured_place(place: &str, destinations: &[Region], targets: &[AccountId], what: &str) -> Result<Place, String> {
    let (account, region) = match place.trim().split_once('/') {
        Some((account, region)) => (Some(AccountId::parse(account).map_err(|e| e.to_string())?), region),
        None => (None, place.trim()),
    };
    let region = Region::parse(region).map_err(|e| e.to_string())?;
    match &account {
        None if !destinations.contains(&region) => {
            Err(format!("{what} is configured for {region}, which is not in TARGET_REGIONS"))
        }
        Some(a) if !targets.contains(a) => {
            Err(format!("{what} is configured for account {a}, which is not in TARGET_ACCOUNTS"))
        }
        _ => Ok(Place::new(account, region)),
    }
}
