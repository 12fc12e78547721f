//! Unit tests of `replication_rules`.

use super::*;
use crate::core::ids::ImageId;
use crate::core::image::ImageState;

fn r(s: &str) -> Region {
    Region::parse(s).unwrap()
}

fn me() -> AccountId {
    AccountId::parse("123456789012").unwrap()
}

fn image(name: &str, tags: &[(&str, &str)]) -> ImageInfo {
    let mut image = ImageInfo::fixture(
        ImageId::parse("ami-0123456789abcdef0").unwrap(),
        ImageState::Available,
        tags.iter().map(|(k, v)| Tag::new(*k, *v)).collect(),
    );
    image.name = Some(name.into());
    image
}

fn rule(name: &str, matcher: Match) -> Rule {
    Rule { name: name.into(), matcher, settings: RuleSettings::unset() }
}

fn tags(key: &str, values: &[&str]) -> Vec<TagMatch> {
    vec![TagMatch { key: key.into(), values: values.iter().map(|v| v.to_string()).collect() }]
}

#[test]
fn the_first_matching_rule_wins_and_no_match_says_why_for_each_rule() {
    let rules = vec![
        rule("windows", Match { name: Some(glob::Pattern::new("win-*").unwrap()), ..Match::default() }),
        rule("golden", Match { tags: tags("Kind", &["base", "golden"]), ..Match::default() }),
        rule("team-a", Match { tags: tags("Team", &["a"]), regions: vec![r("us-east-1")], ..Match::default() }),
    ];
    let golden_win = image("win-2025", &[("Kind", "golden")]);
    assert_eq!(select(&rules, &golden_win, &r("us-east-1"), &me()).unwrap().name, "windows");
    let base = image("al2023", &[("Kind", "base")]);
    assert_eq!(select(&rules, &base, &r("us-east-1"), &me()).unwrap().name, "golden");
    let team = image("svc", &[("Team", "a")]);
    assert_eq!(select(&rules, &team, &r("us-east-1"), &me()).unwrap().name, "team-a");
    let why = select(&rules, &team, &r("eu-west-1"), &me()).unwrap_err();
    let text: Vec<String> = why.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        vec![
            "rule windows: name \"svc\" does not match win-*",
            "rule golden: tag Kind=base|golden is missing",
            "rule team-a: source region eu-west-1 is not one of its regions",
        ]
    );
}

#[test]
fn owners_default_to_this_account_and_self_must_be_named_with_others() {
    let other = AccountId::parse("210987654321").unwrap();
    let mut shared = image("x", &[]);
    shared.owner = Some(other.clone());
    let mine = image("x", &[]);
    let default = Match::default();
    assert!(default.mismatch(&mine, &r("us-east-1"), &me()).is_none());
    assert!(default.mismatch(&shared, &r("us-east-1"), &me()).unwrap().contains("210987654321"));
    let only_other = Match { this_account: false, owners: vec![other.clone()], ..Match::default() };
    assert!(only_other.mismatch(&shared, &r("us-east-1"), &me()).is_none());
    assert!(only_other.mismatch(&mine, &r("us-east-1"), &me()).is_some());
}

#[test]
fn an_earlier_rule_that_covers_a_later_one_shadows_it() {
    let rules = vec![
        rule("golden", Match { tags: tags("Kind", &["base", "golden"]), ..Match::default() }),
        rule("golden-base", Match { tags: tags("Kind", &["base"]), regions: vec![r("us-east-1")], ..Match::default() }),
        rule("named", Match { name: Some(glob::Pattern::new("app-*").unwrap()), ..Match::default() }),
        rule(
            "named-again",
            Match { name: Some(glob::Pattern::new("app-*").unwrap()), tags: tags("T", &["1"]), ..Match::default() },
        ),
        rule("literal", Match { name: Some(glob::Pattern::new("app-1").unwrap()), ..Match::default() }),
        rule("other-tag", Match { tags: tags("Kind", &["app"]), ..Match::default() }),
        rule("catch-all", Match::default()),
        rule("after-all", Match { tags: tags("Team", &["z"]), ..Match::default() }),
    ];
    assert_eq!(
        shadowed(&rules),
        vec![
            ("golden-base".to_string(), "golden".to_string()),
            ("named-again".to_string(), "named".to_string()),
            ("literal".to_string(), "named".to_string()),
            ("after-all".to_string(), "catch-all".to_string()),
        ]
    );
    // Wider owners or another region are not covered.
    let narrow = Match { regions: vec![r("us-east-1")], ..Match::default() };
    let wider = Match { owners: vec![AccountId::parse("210987654321").unwrap()], ..Match::default() };
    assert!(!narrow.covers(&Match::default()));
    assert!(!Match::default().covers(&wider));
    assert!(wider.covers(&Match::default()));
}

#[test]
fn rule_names_are_tag_values_and_dimensions() {
    assert!(valid_name("golden-base_1.0"));
    assert!(!valid_name(""));
    assert!(!valid_name("has space"));
    assert!(!valid_name(&"x".repeat(65)));
}
