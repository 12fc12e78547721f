//! Which launch permissions a copy gets. AWS does not copy them, so the product re-applies them.

use super::ids::AccountId;
use super::image::LaunchPermission;

/// The operator's sharing settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareSettings {
    /// Re-apply the source image's own launch permissions (COPY_SOURCE_LAUNCH_PERMISSIONS).
    pub copy_source_permissions: bool,
    /// Always share with these (SHARE_WITH_ACCOUNTS, SHARE_WITH_ORGANIZATION_ARNS, SHARE_WITH_OU_ARNS).
    pub extra: Vec<LaunchPermission>,
    /// Whether the public group `all` may be applied (ALLOW_PUBLIC).
    pub allow_public: bool,
}

/// The permissions to add to a copy, and whether a public grant was withheld (to be logged as a warning).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShareDecision {
    pub grants: Vec<LaunchPermission>,
    pub public_withheld: bool,
}

/// Combines the source's permissions with the configured ones. The owner's own account is never listed
/// (it needs no grant), duplicates are dropped, and `all` is kept only when the operator allowed it.
/// `copy_grants` are the target accounts the product itself let read the source (so that they can copy it):
/// those grants on the source are not passed on to copies (the target accounts get copies of their own).
pub fn decide(
    source: &[LaunchPermission],
    policy: &ShareSettings,
    owner: &AccountId,
    copy_grants: &[AccountId],
) -> ShareDecision {
    let from_source: &[LaunchPermission] = if policy.copy_source_permissions { source } else { &[] };
    let from_source =
        from_source.iter().filter(|g| !matches!(g, LaunchPermission::Account(a) if copy_grants.contains(a)));
    let mut decision = ShareDecision::default();
    for grant in from_source.chain(&policy.extra) {
        match grant {
            LaunchPermission::Public if !policy.allow_public => decision.public_withheld = true,
            LaunchPermission::Account(a) if a == owner => {}
            g if decision.grants.contains(g) => {}
            g => decision.grants.push(g.clone()),
        }
    }
    decision.grants.sort();
    decision
}

/// How far ahead of now a deprecation time must be for EC2 to take it: EnableImageDeprecation refuses a time in
/// the past and rounds seconds to the nearest minute.
pub const DEPRECATION_LEAD_SECONDS: i64 = 60;

/// The deprecation time a copy gets (RFC 3339) for its source's `source_time`, at `now` (epoch seconds): the
/// source's own while EC2 can still take it (at least [`DEPRECATION_LEAD_SECONDS`] ahead); for a source already
/// deprecated, or about to be, the earliest time EC2 accepts: the first full minute at least that far ahead, so the
/// copy is deprecated at once, as its source is. An unreadable time is passed on as it is (EC2 says why).
pub fn deprecation_time(source_time: &str, now: i64) -> String {
    let earliest = now.saturating_add(DEPRECATION_LEAD_SECONDS);
    match super::time::parse_rfc3339(source_time) {
        Some(t) if t >= earliest => source_time.to_string(),
        Some(_) => super::time::format_rfc3339(earliest.saturating_add(59) / 60 * 60),
        None => source_time.to_string(),
    }
}

#[cfg(test)]
#[path = "share_tests.rs"]
mod tests;
