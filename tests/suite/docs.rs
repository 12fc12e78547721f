//! The documentation a newcomer walks agrees with the code: every JSON and YAML example in README.md and docs/
//! parses, every rules document among them (a JSON block, or a YAML block's `Value`, with `"rules"`) passes the
//! function's own validation, every relative link points at a file (and heading) that exists, and the README
//! stays a front page that maps every page of docs/.

use ami_replicator::config::Config;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// The fenced code blocks of `text` with their language.
fn blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in text.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => open = Some((lang.trim().to_string(), String::new())),
            (Some(_), Some(_)) => out.extend(open.take()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

fn check_rules(document: &str, page: &Path) {
    // As template.yaml deploys it: with its admission table (rules with accounts need the function's record).
    let vars = [
        ("WORK_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/work"),
        ("AWS_REGION", "us-east-1"),
        ("ADMISSION_TABLE", "admission"),
    ];
    let lookup = |name: &str| match name {
        "REPLICATION_RULES" => Some(document.to_string()),
        other => vars.iter().find(|(k, _)| *k == other).map(|(_, v)| v.to_string()),
    };
    if let Err(e) = Config::from_lookup(&lookup) {
        panic!("{}: a rules example the function refuses: {e}\n{document}", page.display());
    }
}

/// GitHub's anchor of a heading.
fn slug(heading: &str) -> String {
    let text = heading.trim_start_matches('#').trim().to_lowercase();
    text.chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_')
        .collect::<String>()
        .replace(' ', "-")
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut in_code = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            out.insert(slug(line));
        }
    }
    out
}

#[test]
fn every_json_and_yaml_example_parses_and_every_rules_example_is_valid() {
    let (mut json, mut yaml, mut rules) = (0, 0, 0);
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for (lang, body) in blocks(&text) {
            match lang.as_str() {
                "json" => {
                    let value: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| {
                        panic!("{}: a JSON example that does not parse: {e}\n{body}", page.display())
                    });
                    json += 1;
                    if value.get("rules").is_some() {
                        check_rules(&body, &page);
                        rules += 1;
                    }
                }
                "yaml" | "yml" => {
                    let value: serde_norway::Value = serde_norway::from_str(&body).unwrap_or_else(|e| {
                        panic!("{}: a YAML example that does not parse: {e}\n{body}", page.display())
                    });
                    yaml += 1;
                    if let Some(doc) = find_rules(&value) {
                        check_rules(&doc, &page);
                        rules += 1;
                    }
                }
                _ => {}
            }
        }
    }
    assert!(json >= 3 && yaml >= 1 && rules >= 2, "examples found: {json} JSON, {yaml} YAML, {rules} rules documents");
}

/// A string value in `value` that is a rules document.
fn find_rules(value: &serde_norway::Value) -> Option<String> {
    match value {
        serde_norway::Value::String(s) if s.contains("\"rules\"") => Some(s.clone()),
        serde_norway::Value::Mapping(m) => m.values().find_map(find_rules),
        serde_norway::Value::Sequence(s) => s.iter().find_map(find_rules),
        serde_norway::Value::Tagged(t) => find_rules(&t.value),
        _ => None,
    }
}

#[test]
fn every_relative_link_points_at_an_existing_page_and_heading() {
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        let dir = page.parent().unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find(')') else { break };
            let link = &rest[..end];
            if link.starts_with("http") || link.contains(' ') {
                continue;
            }
            let (file, anchor) = link.split_once('#').unwrap_or((link, ""));
            let target = if file.is_empty() { page.clone() } else { dir.join(file) };
            assert!(target.exists(), "{}: link to {link}: no such file", page.display());
            if !anchor.is_empty() && target.extension().is_some_and(|e| e == "md") {
                let headings = anchors(&std::fs::read_to_string(&target).unwrap());
                assert!(headings.contains(anchor), "{}: link to {link}: no such heading", page.display());
            }
        }
    }
}

#[test]
fn the_readme_is_a_front_page_that_maps_every_page() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.lines().count() <= 200, "the README is a front page: {} lines", readme.lines().count());
    assert!(readme.contains("scripts/demo.sh") && readme.contains("scripts/test.sh"), "the two commands");
    for page in pages().iter().skip(1) {
        let name = page.file_name().unwrap().to_string_lossy();
        assert!(readme.contains(&format!("(docs/{name})")), "docs/{name} is not on the README's map");
    }
    for needed in [
        "configuration.md",
        "cross-account.md",
        "copy-events.md",
        "operations.md",
        "security.md",
        "performance.md",
        "architecture.md",
    ] {
        assert!(root().join("docs").join(needed).exists(), "docs/{needed}");
    }
}

#[test]
fn the_service_control_policy_for_the_products_tags_parses_and_names_its_parties() {
    let text = std::fs::read_to_string(root().join("docs/security.md")).unwrap();
    let policy = blocks(&text)
        .into_iter()
        .find(|(lang, body)| lang == "json" && body.contains("OnlyTheReplicatorWritesItsTags"))
        .expect("docs/security.md ships the Service Control Policy");
    let policy: serde_json::Value = serde_json::from_str(&policy.1).unwrap();
    let statement = &policy["Statement"][0];
    assert_eq!(statement["Effect"], "Deny");
    let actions: Vec<&str> = statement["Action"].as_array().unwrap().iter().filter_map(|a| a.as_str()).collect();
    assert_eq!(actions, ["ec2:CreateTags", "ec2:DeleteTags"]);
    let keys = &statement["Condition"]["ForAnyValue:StringLike"]["aws:TagKeys"];
    let prefix = ami_replicator::core::provenance::TAG_PREFIX;
    assert_eq!(keys, &serde_json::json!([format!("{prefix}*")]), "every tag under the product's prefix");
    assert!(ami_replicator::core::provenance::SOURCE_IMAGE_TAG.starts_with(prefix));
    let exempt = statement["Condition"]["ArnNotLike"]["aws:PrincipalArn"].to_string();
    let target = std::fs::read_to_string(root().join("target-account.yaml")).unwrap();
    let role_name = target.split("  RoleName:").nth(1).and_then(|b| b.split("Default: ").nth(1)).unwrap();
    let role_name = role_name.lines().next().unwrap().trim();
    assert!(exempt.contains(&format!(":role/{role_name}\"")), "the target accounts' role ({role_name}): {exempt}");
    assert!(exempt.contains("FunctionRole"), "the replicator's function role: {exempt}");
    let resources = statement["Resource"].to_string();
    assert!(resources.contains("image/*") && resources.contains("snapshot/*"), "{resources}");
}
