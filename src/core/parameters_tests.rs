use super::*;

fn id() -> ImageId {
    ImageId::parse("ami-0123456789abcdef0").unwrap()
}

#[test]
fn names_substitute_placeholders_and_cannot_add_levels() {
    let r = Region::parse("us-east-1").unwrap();
    assert_eq!(parameter_name("/ami/{name}/latest", &id(), &r, Some("golden base")), "/ami/golden-base/latest");
    assert_eq!(parameter_name("/ami/{name}/latest", &id(), &r, Some("a/../b")), "/ami/a-..-b/latest");
    assert_eq!(parameter_name("/ami/{name}", &id(), &r, None), "/ami/ami-0123456789abcdef0");
    assert_eq!(
        parameter_name("/x/{source_region}/{source_image}", &id(), &r, None),
        "/x/us-east-1/ami-0123456789abcdef0"
    );
}

#[test]
fn templates_are_checked() {
    assert!(check_template("/ami/{name}/latest").is_ok());
    assert!(check_template("ami/{name}").unwrap_err().contains("start with /"));
    assert!(check_template("/ami/{owner}").unwrap_err().contains("{owner}"));
    assert!(check_template("/ami/{name").is_err());
    assert_eq!(prefix("/ami/{name}/latest"), "/ami/");
    assert_eq!(prefix("/fixed/name"), "/fixed/name");
}

#[test]
fn only_a_newer_source_replaces() {
    let old = Some("2026-11-01T00:00:00Z");
    let new = Some("2026-11-20T00:00:00Z");
    assert!(may_replace(new, old));
    assert!(!may_replace(old, new), "an older source never replaces a newer one");
    assert!(may_replace(new, new), "the same source again");
    assert!(may_replace(new, None), "nothing known of the current one (gone, or not ours)");
    assert!(!may_replace(None, new));
}
