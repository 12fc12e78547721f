//! Which launch permissions a copy gets. AWS does not copy them, so the product re-applies them.

use super::ids::AccountId;
use super::image::LaunchPermission;

/// The operator's sharing settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharePolicy {
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
    policy: &SharePolicy,
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

#[cfg(test)]
#[path = "share_tests.rs"]
mod tests;
