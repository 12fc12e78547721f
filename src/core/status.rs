//! "Where is my AMI?": the state of one source's replication, per place, from what EC2 and the dead-letter queue
//! show (gathered by `crate::status`). Pure: observations in, a report out, rendered as a table or JSON.

use super::ids::{AccountId, ImageId, Place, Region};
use super::image::{ImageInfo, ImageState, LaunchPermission};
use super::launch_templates::Version;
use super::provenance::{
    claimed_source, false_claim, gave_up, is_our_copy_at, GAVE_UP_TAG, KEPT_TAG, SHARE_FAILED_TAG,
};
use super::retention::{self, Fate, Kept, Observed, Retention};
use super::time::parse_rfc3339;
use serde::Serialize;

/// What was seen at one place.
#[derive(Debug, Clone)]
pub struct PlaceObservation {
    pub place: Place,
    /// The product's copies of the source there (provenance tags), or why they could not be read.
    pub copies: Result<Vec<ImageInfo>, String>,
    /// The launch permissions of the copy reported (the available one), if read.
    pub permissions: Option<Result<Vec<LaunchPermission>, String>>,
    /// What the configuration wants the copy shared with there.
    pub wanted: Vec<LaunchPermission>,
    /// With RETAIN_COPIES and a source carrying the family tag: the retention policy, the family's name, and the
    /// product's copies of that family there (or why they could not be read).
    pub family: Option<(Retention, String, Result<Vec<ImageInfo>, String>)>,
    /// With LAUNCH_TEMPLATES for the place: the template and its versions (or why they could not be read).
    pub template: Option<(String, Result<Vec<Version>, String>)>,
}

/// The verdict of one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Available and shared as configured.
    Complete,
    /// A copy is being made.
    Pending,
    /// Available, but launch permissions are missing or unexpected.
    Incomplete,
    /// Given up (tombstone) or failed.
    Failed,
    /// The copy is disabled (with its source, DISABLE_COPIES_WITH_SOURCE, or by hand).
    Disabled,
    /// No copy.
    Missing,
    /// The place could not be read.
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub account: String,
    pub region: String,
    pub copy: Option<String>,
    pub state: Option<String>,
    pub age_seconds: Option<i64>,
    pub encrypted: Option<bool>,
    pub missing_permissions: Vec<String>,
    pub unexpected_permissions: Vec<String>,
    pub verdict: Verdict,
    /// Why, when not complete.
    pub note: Option<String>,
    /// Images at this place whose tags claim to be this source's copy while EC2's record (or the function's)
    /// says otherwise: never shared, changed or deleted by the product, and never taken for the copy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub claimed_not_copies: Vec<String>,
    /// RETAIN_COPIES at this place: the family's copies kept and those the next run retires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<FamilyRow>,
    /// LAUNCH_TEMPLATES at this place: which versions launch what.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_template: Option<TemplateRow>,
}

/// The source's family at one place, as retention sees it now.
#[derive(Debug, Clone, Serialize)]
pub struct FamilyRow {
    /// `KEY=VALUE` of the family tag.
    pub family: String,
    /// Copies kept, newest first, each with why (`newest 2`, `protected`).
    pub kept: Vec<String>,
    /// Copies the next run retires (in dry run: would retire), unless something uses them then.
    pub to_retire: Vec<String>,
    pub dry_run: bool,
    /// Why the family could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The place's launch template: its default and latest versions and the images they launch.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateRow {
    pub template: String,
    pub default_version: Option<i64>,
    pub default_image: Option<String>,
    pub latest_version: Option<i64>,
    pub latest_image: Option<String>,
    /// The default version launches the copy reported.
    pub launches_copy: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub source_image: String,
    pub source_region: String,
    /// The source as EC2 shows it now (`None`: gone).
    pub source_state: Option<String>,
    pub places: Vec<Row>,
    /// Dead letters that concern the source, with their reasons.
    pub dead_letters: Vec<String>,
    /// Every place complete and no dead letter.
    pub complete: bool,
    /// The replication rule that applies to the source as EC2 shows it (REPLICATION_RULES), or why none does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// The report of `source` from what was observed, at `now` (epoch seconds).
pub fn assess(
    source: &ImageId,
    source_region: &Region,
    source_state: Option<&ImageState>,
    observed: &[PlaceObservation],
    dead_letter_reasons: Vec<String>,
    home: &AccountId,
    now: i64,
) -> Report {
    let places: Vec<Row> = observed.iter().map(|o| row(source, source_region, source_state, o, home, now)).collect();
    let complete = dead_letter_reasons.is_empty() && places.iter().all(|r| r.verdict == Verdict::Complete);
    Report {
        source_image: source.to_string(),
        source_region: source_region.to_string(),
        source_state: source_state.map(ToString::to_string),
        places,
        dead_letters: dead_letter_reasons,
        complete,
        rule: None,
    }
}

fn row(
    source: &ImageId,
    source_region: &Region,
    source_state: Option<&ImageState>,
    o: &PlaceObservation,
    home: &AccountId,
    now: i64,
) -> Row {
    let mut r = Row {
        account: o.place.owner(home).to_string(),
        region: o.place.region.to_string(),
        copy: None,
        state: None,
        age_seconds: None,
        encrypted: None,
        missing_permissions: vec![],
        unexpected_permissions: vec![],
        verdict: Verdict::Missing,
        note: None,
        claimed_not_copies: vec![],
        retention: o
            .family
            .as_ref()
            .map(|(policy, family, copies)| family_row(policy, family, copies, o.place.owner(home), &o.place.region)),
        launch_template: None,
    };
    let copies = match &o.copies {
        Ok(c) => c,
        Err(e) => {
            r.verdict = Verdict::Unknown;
            r.note = Some(e.clone());
            return r;
        }
    };
    r.claimed_not_copies = copies
        .iter()
        .filter(|i| claimed_source(&i.tags).is_some_and(|(s, g)| &s == source && &g == source_region))
        .filter_map(|i| false_claim(i, o.place.owner(home), &o.place.region))
        .collect();
    let mine: Vec<&ImageInfo> =
        copies.iter().filter(|i| is_our_copy_at(i, source, source_region, &o.place, home)).collect();
    let best = mine
        .iter()
        .find(|i| i.state == ImageState::Available)
        .or_else(|| mine.iter().find(|i| i.state == ImageState::Pending))
        .or_else(|| mine.iter().find(|i| i.state.is_disabled()))
        .or_else(|| mine.iter().find(|i| gave_up(i)))
        .or_else(|| mine.first());
    let Some(copy) = best else {
        r.note = Some("no copy".into());
        return r;
    };
    r.launch_template = o.template.as_ref().map(|(name, versions)| template_row(name, versions, &copy.id));
    r.copy = Some(copy.id.to_string());
    r.state = Some(copy.state.to_string());
    r.age_seconds = copy.created.as_deref().and_then(parse_rfc3339).map(|c| (now - c).max(0));
    r.encrypted = Some(copy.traits.encrypted);
    r.verdict = match &copy.state {
        ImageState::Available => match &o.permissions {
            Some(Ok(have)) => {
                r.missing_permissions =
                    o.wanted.iter().filter(|w| !have.contains(w)).map(ToString::to_string).collect();
                r.unexpected_permissions =
                    have.iter().filter(|h| !o.wanted.contains(h)).map(ToString::to_string).collect();
                if r.missing_permissions.is_empty() && r.unexpected_permissions.is_empty() {
                    Verdict::Complete
                } else {
                    Verdict::Incomplete
                }
            }
            Some(Err(e)) => {
                r.note = Some(format!("launch permissions unreadable: {e}"));
                Verdict::Unknown
            }
            None => Verdict::Unknown,
        },
        ImageState::Pending => Verdict::Pending,
        s if s.is_disabled() => {
            r.note = Some(match source_state {
                Some(s) if s.is_disabled() => "disabled with its source (enabled again with it)".to_string(),
                _ => "disabled while its source is not: enable it, or deregister it for a new copy".to_string(),
            });
            Verdict::Disabled
        }
        _ => {
            r.note = copy.tag(GAVE_UP_TAG).map(str::to_string).or_else(|| Some(format!("copy is {}", copy.state)));
            Verdict::Failed
        }
    };
    // What the product wrote on the copy: a share that failed for good, a copy kept because it is in use.
    if let Some(why) = copy.tag(SHARE_FAILED_TAG) {
        r.verdict = Verdict::Incomplete;
        r.note = Some(format!("share failed: {why}"));
    }
    if let Some(why) = copy.tag(KEPT_TAG) {
        r.note = Some(match why.strip_prefix("not disabled with its source: ") {
            Some(why) => format!("kept enabled (source disabled): {why}"),
            None => format!("kept (source deregistered): {why}"),
        });
    }
    r
}

/// What retention makes of the family at one place now (what uses a copy is not read here: a copy listed to
/// retire is kept if something uses it when retention runs).
fn family_row(
    policy: &Retention,
    family: &str,
    copies: &Result<Vec<ImageInfo>, String>,
    owner: &AccountId,
    region: &Region,
) -> FamilyRow {
    let mut out = FamilyRow {
        family: format!("{}={family}", policy.family_tag),
        kept: vec![],
        to_retire: vec![],
        dry_run: policy.dry_run,
        error: None,
    };
    let copies = match copies {
        Ok(c) => c,
        Err(e) => {
            out.error = Some(e.clone());
            return out;
        }
    };
    let observed: Vec<Observed> = copies.iter().map(Observed::of).collect();
    for (id, fate) in retention::decide(&observed, &policy.family_tag, policy.copies, owner, region) {
        match fate {
            Fate::Keep(Kept::Retained) => out.kept.push(format!("{id} (newest {})", policy.copies.max(1))),
            Fate::Keep(Kept::Protected) => out.kept.push(format!("{id} (protected)")),
            Fate::Keep(Kept::InUse(by)) => out.kept.push(format!("{id} (in use by {by})")),
            Fate::Retire { .. } => out.to_retire.push(id.to_string()),
        }
    }
    out
}

/// The place's launch template as its versions show it, and whether its default launches `copy`.
fn template_row(name: &str, versions: &Result<Vec<Version>, String>, copy: &ImageId) -> TemplateRow {
    let mut out = TemplateRow {
        template: name.to_string(),
        default_version: None,
        default_image: None,
        latest_version: None,
        latest_image: None,
        launches_copy: false,
        error: None,
    };
    match versions {
        Err(e) => out.error = Some(e.clone()),
        Ok(versions) => {
            if let Some(d) = versions.iter().find(|v| v.is_default) {
                out.default_version = Some(d.number);
                out.default_image = d.image.as_ref().map(ToString::to_string);
                out.launches_copy = d.image.as_ref() == Some(copy);
            }
            if let Some(l) = versions.iter().max_by_key(|v| v.number) {
                out.latest_version = Some(l.number);
                out.latest_image = l.image.as_ref().map(ToString::to_string);
            }
        }
    }
    out
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// The report as a table for people.
pub fn table(report: &Report) -> String {
    let mut out = format!(
        "source {} in {} ({})\n",
        report.source_image,
        report.source_region,
        report.source_state.as_deref().unwrap_or("gone")
    );
    if let Some(rule) = &report.rule {
        out.push_str(&format!("rule: {rule}\n"));
    }
    out.push_str(&format!(
        "{:<13} {:<15} {:<22} {:<10} {:>7} {:<9} {:<11} {}\n",
        "account", "region", "copy", "state", "age", "encrypted", "verdict", "permissions / note"
    ));
    for r in &report.places {
        let age = r.age_seconds.map_or("-".to_string(), |s| format!("{}m", s / 60));
        let mut notes = Vec::new();
        if !r.missing_permissions.is_empty() {
            notes.push(format!("missing: {}", r.missing_permissions.join(", ")));
        }
        if !r.unexpected_permissions.is_empty() {
            notes.push(format!("unexpected: {}", r.unexpected_permissions.join(", ")));
        }
        notes.extend(r.note.clone());
        let line = format!(
            "{:<13} {:<15} {:<22} {:<10} {:>7} {:<9} {:<11} {}",
            r.account,
            r.region,
            r.copy.as_deref().unwrap_or("-"),
            r.state.as_deref().unwrap_or("-"),
            age,
            r.encrypted.map_or("-", |e| if e { "yes" } else { "no" }),
            format!("{:?}", r.verdict).to_lowercase(),
            notes.join("; ")
        );
        out.push_str(line.trim_end());
        out.push('\n');
        if let Some(f) = &r.retention {
            out.push_str(&format!("  retention {}: kept {}", f.family, list(&f.kept)));
            let retire = if f.dry_run { "would retire (dry run)" } else { "retired next" };
            out.push_str(&format!("; {retire}: {}", list(&f.to_retire)));
            out.push_str(&f.error.as_ref().map(|e| format!(" (unreadable: {e})")).unwrap_or_default());
            out.push('\n');
        }
        for claim in &r.claimed_not_copies {
            out.push_str(&format!("  claimed, not our copy: {claim}\n"));
        }
        if let Some(t) = &r.launch_template {
            let version = |n: Option<i64>, image: &Option<String>| {
                n.map_or("-".to_string(), |n| format!("v{n} {}", image.as_deref().unwrap_or("(no image)")))
            };
            out.push_str(&format!(
                "  launch template {}: default {}{}, latest {}{}\n",
                t.template,
                version(t.default_version, &t.default_image),
                if t.launches_copy { " (this copy)" } else { "" },
                version(t.latest_version, &t.latest_image),
                t.error.as_ref().map(|e| format!(" (unreadable: {e})")).unwrap_or_default()
            ));
        }
    }
    for reason in &report.dead_letters {
        out.push_str(&format!("dead letter: {reason}\n"));
    }
    out.push_str(if report.complete { "complete\n" } else { "NOT complete\n" });
    out
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
