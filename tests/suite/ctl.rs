//! The command-line tool as an operator runs it: `--help` documents every option and exits 0, `rules check`
//! validates a document with the function's code (exit 1 with every problem) and says which rule applies to an
//! image and where its copies go. (`status` over the emulator: tests/suite/status_moto.rs.)

use std::io::Write;
use std::process::Command;

fn ctl(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ami-replicator-ctl"))
        .args(args)
        .env_remove("REPLICATION_RULES")
        .env_remove("TARGET_REGIONS")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn document(name: &str, text: &str) -> String {
    let path = std::env::temp_dir().join(format!("ami-replicator-ctl-{}-{name}.json", std::process::id()));
    std::fs::File::create(&path).unwrap().write_all(text.as_bytes()).unwrap();
    path.to_string_lossy().to_string()
}

const RULES: &str = r#"{"rules": [
  {"name": "windows", "match": {"tags": {"Platform": "windows"}}, "regions": ["eu-west-1"], "encrypt": true,
   "kms_keys": {"eu-west-1": "alias/windows-images"}},
  {"name": "golden", "match": {"tags": {"Kind": ["base", "golden"]}}, "regions": ["ap-southeast-2"],
   "accounts": {"222222222222": "arn:aws:iam::222222222222:role/ami-replicator-target"}}
]}"#;

#[test]
fn help_documents_every_option_and_exits_zero() {
    let (code, text) = ctl(&["--help"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("status") && text.contains("rules"), "{text}");
    let (code, text) = ctl(&["rules", "check", "--help"]);
    assert_eq!(code, 0, "{text}");
    for option in ["--region", "--tag", "--name", "--owner", "--account"] {
        assert!(text.contains(option), "{option} documented: {text}");
    }
    let (code, text) = ctl(&["status", "--help"]);
    assert_eq!(code, 0, "{text}");
    for option in ["--region", "--json", "--function"] {
        assert!(text.contains(option), "{option} documented: {text}");
    }
    let (code, text) = ctl(&["status", "ami-0123456789abcdef0"]);
    assert_eq!(code, 2, "--region missing is a usage error: {text}");
}

#[test]
fn rules_check_says_which_rule_applies_and_where_copies_go() {
    let file = document("valid", RULES);
    let (code, text) = ctl(&["rules", "check", &file, "--region", "us-east-1", "--tag", "Kind=golden"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("rule: golden"), "{text}");
    assert!(text.contains("copy to ap-southeast-2 in this account"), "{text}");
    assert!(text.contains("copy to us-east-1 in 222222222222"), "a target account also in the source region: {text}");
    let (code, text) = ctl(&["rules", "check", &file, "--region", "us-east-1", "--tag", "Platform=windows"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("rule: windows") && text.contains("(key alias/windows-images)"), "{text}");
    let (code, text) = ctl(&["rules", "check", &file, "--region", "us-east-1", "--name", "scratch"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("not replicated: no replication rule matches"), "{text}");
}

#[test]
fn rules_check_refuses_a_shadowed_rule_with_every_problem() {
    let shadowed = r#"{"rules": [
      {"name": "all-golden", "match": {"tags": {"Kind": "golden"}}, "regions": ["eu-west-1"]},
      {"name": "golden-east", "match": {"tags": {"Kind": "golden"}, "regions": ["us-east-1"]}, "regions": ["mars-1"]}
    ]}"#;
    let (code, text) = ctl(&["rules", "check", &document("shadowed", shadowed)]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("rule \"golden-east\" match: rule \"all-golden\" comes first"), "{text}");
    assert!(text.contains("rule \"golden-east\" regions: \"mars-1\" is not a valid region"), "{text}");
}
