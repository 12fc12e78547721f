//! The templates agree with the code: every variable template.yaml sets is one the function reads, and the
//! target account's role trusts the session name the replicator uses. (cfn-lint, checkov and
//! `sam validate --lint` check the templates themselves in scripts/test.sh.)

use std::path::PathBuf;

fn read(name: &str) -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

#[test]
fn every_environment_variable_of_the_template_is_read_by_the_configuration() {
    let template = read("template.yaml");
    let config = read("src/config.rs");
    let variables = template.split("        Variables:\n").nth(1).expect("the function's Environment.Variables");
    let names: Vec<&str> = variables
        .lines()
        .take_while(|l| l.starts_with("          "))
        .filter_map(|l| l.trim().split_once(':').map(|(k, _)| k))
        .collect();
    assert!(names.len() >= 17, "{names:?}");
    for name in names {
        assert!(config.contains(&format!("\"{name}\"")), "{name} is set by template.yaml but never read");
    }
}

#[test]
fn the_target_role_trusts_the_replicators_session_name() {
    let template = read("target-account.yaml");
    let expected = format!("sts:RoleSessionName: {}", ami_replicator::aws::ec2::SESSION_NAME);
    assert!(template.contains(&expected), "target-account.yaml must trust {expected}");
}
