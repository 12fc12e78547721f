//! "Where is my AMI?": the state of one source's replication, per place, from what EC2 and the dead-letter queue
//! show (gathered by `crate::status`). Pure: observations in, a report out, rendered as a table or JSON.

use super::ids::{AccountId, ImageId, Place, Region};
use super::image::{ImageInfo, ImageState, LaunchPermission};
use super::provenance::{gave_up, is_copy_of, GAVE_UP_TAG, KEPT_TAG, SHARE_FAILED_TAG};
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
    let places: Vec<Row> = observed.iter().map(|o| row(source, source_region, o, home, now)).collect();
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

fn row(source: &ImageId, source_region: &Region, o: &PlaceObservation, home: &AccountId, now: i64) -> Row {
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
    };
    let copies = match &o.copies {
        Ok(c) => c,
        Err(e) => {
            r.verdict = Verdict::Unknown;
            r.note = Some(e.clone());
            return r;
        }
    };
    let mine: Vec<&ImageInfo> = copies.iter().filter(|i| is_copy_of(i, source, source_region)).collect();
    let best = mine
        .iter()
        .find(|i| i.state == ImageState::Available)
        .or_else(|| mine.iter().find(|i| i.state == ImageState::Pending))
        .or_else(|| mine.iter().find(|i| gave_up(i)))
        .or_else(|| mine.first());
    let Some(copy) = best else {
        r.note = Some("no copy".into());
        return r;
    };
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
        r.note = Some(format!("kept (source deregistered): {why}"));
    }
    r
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
