//! Launch templates that follow the copies (LAUNCH_TEMPLATES): once a copy is shared, its place's template gets a
//! new version with the copy's image id (made default with LAUNCH_TEMPLATE_SET_DEFAULT). Idempotent: a copy gets at
//! most one version; and a newer source's copy is never replaced by an older one's. Pure.

use super::ids::ImageId;
use super::parameters::may_replace;

/// One version of a launch template, as DescribeLaunchTemplateVersions shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub number: i64,
    pub image: Option<ImageId>,
    pub is_default: bool,
}

/// What to do with a place's launch template for a shared copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// A new version from `from` (the latest) with only the image id changed; default when `set_default`.
    CreateVersion { from: i64, set_default: bool },
    /// The copy's version exists but is not the default yet (a version made by a run that stopped before).
    SetDefault { version: i64 },
    /// Nothing to do, and why (logged).
    Nothing(String),
}

/// The update for `copy` (whose source was created at `source_created`, RFC 3339), given the template's
/// `versions` and the source creation date of the latest version's image when it is a copy of ours
/// (`latest_source_created`; `None` for an image that is not, or unknown: replaced).
pub fn decide(
    copy: &ImageId,
    source_created: Option<&str>,
    versions: &[Version],
    latest_source_created: Option<&str>,
    set_default: bool,
) -> Update {
    if let Some(v) = versions.iter().filter(|v| v.image.as_ref() == Some(copy)).max_by_key(|v| v.number) {
        return if set_default && !v.is_default {
            Update::SetDefault { version: v.number }
        } else {
            Update::Nothing(format!("version {} already launches {copy}", v.number))
        };
    }
    let Some(latest) = versions.iter().max_by_key(|v| v.number) else {
        return Update::Nothing("the launch template has no version to start from".into());
    };
    if !may_replace(source_created, latest_source_created) {
        return Update::Nothing(format!(
            "version {} launches a copy of a newer source ({}); kept",
            latest.number,
            latest.image.as_ref().map_or("?", |i| i.as_str())
        ));
    }
    Update::CreateVersion { from: latest.number, set_default }
}

#[cfg(test)]
#[path = "launch_templates_tests.rs"]
mod tests;
