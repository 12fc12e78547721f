//! SSM parameters for consumers (SSM_PARAMETER_TEMPLATE): the parameter's name for a copy, and whether a copy
//! may replace the image a parameter names (only a copy of a newer source may).

use super::ids::{ImageId, Region};
use super::time::parse_rfc3339;

/// The placeholders SSM_PARAMETER_TEMPLATE may use.
pub const PLACEHOLDERS: &[&str] = &["{name}", "{source_image}", "{source_region}"];

/// The part of a template before its first placeholder: the only prefix the function's IAM lets it write under.
pub fn prefix(template: &str) -> &str {
    template.split('{').next().unwrap_or("")
}

/// Checks a template: a fully qualified name (`/...`), known placeholders, at most 15 levels.
pub fn check_template(template: &str) -> Result<(), String> {
    if !template.starts_with('/') {
        return Err(format!("{template:?} must start with / (a fully qualified parameter name)"));
    }
    check_prefix(template)?;
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').map(|e| start + e + 1).ok_or_else(|| format!("{template:?}: unclosed {{"))?;
        let placeholder = &rest[start..end];
        if !PLACEHOLDERS.contains(&placeholder) {
            return Err(format!("unknown placeholder {placeholder} (known: {})", PLACEHOLDERS.join(", ")));
        }
        rest = &rest[end..];
    }
    if template.matches('/').count() > 15 {
        return Err(format!("{template:?} has more than 15 levels"));
    }
    Ok(())
}

/// The fixed part of a template or prefix (before its first `{`) starts with a path level of its own, e.g. `/ami/`:
/// the policy lets the function write under it, never the whole namespace.
pub fn check_prefix(template: &str) -> Result<(), String> {
    let fixed = &template[..template.find('{').unwrap_or(template.len())];
    let level = fixed.strip_prefix('/').and_then(|rest| rest.split_once('/')).map(|(first, _)| first);
    match level {
        Some(first) if !first.is_empty() => Ok(()),
        _ => Err(format!(
            "{template:?} must start with a path level of its own, such as /ami/ (the function may write only under it, \
             never the whole parameter namespace)"
        )),
    }
}

/// The parameter name of a copy of `source` (named `name`). Characters SSM does not allow in names (anything
/// but letters, digits, `_ . - /`) become `-` in the substituted values; a value cannot add levels.
pub fn parameter_name(template: &str, source: &ImageId, source_region: &Region, name: Option<&str>) -> String {
    let clean = |v: &str| -> String {
        v.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' }).collect()
    };
    template
        .replace("{name}", &clean(name.unwrap_or(source.as_str())))
        .replace("{source_image}", source.as_str())
        .replace("{source_region}", source_region.as_str())
}

/// Whether a copy of a source created at `ours` may replace the image the parameter names now, whose source was
/// created at `theirs` (RFC 3339; `None`: unknown). A newer or equally new source replaces it (the same source
/// again, or a parameter pointing at an image that is gone, is rewritten); an older one never does.
pub fn may_replace(ours: Option<&str>, theirs: Option<&str>) -> bool {
    match (ours.and_then(parse_rfc3339), theirs.and_then(parse_rfc3339)) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(o), Some(t)) => o >= t,
    }
}

#[cfg(test)]
#[path = "parameters_tests.rs"]
mod tests;
