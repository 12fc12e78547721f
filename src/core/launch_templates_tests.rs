//! Unit tests of `launch_templates`.

use super::*;

fn id(n: u32) -> ImageId {
    ImageId::parse(&format!("ami-{n:017x}")).unwrap()
}

fn v(number: i64, image: u32, is_default: bool) -> Version {
    Version { number, image: Some(id(image)), is_default }
}

const OLD: &str = "2026-01-01T00:00:00Z";
const NEW: &str = "2026-02-01T00:00:00Z";

#[test]
fn a_new_version_from_the_latest_for_a_newer_copy() {
    let versions = [v(1, 1, true), v(2, 2, false)];
    assert_eq!(
        decide(&id(3), Some(NEW), &versions, Some(OLD), true),
        Update::CreateVersion { from: 2, set_default: true }
    );
    assert_eq!(
        decide(&id(3), Some(NEW), &versions, None, false),
        Update::CreateVersion { from: 2, set_default: false }
    );
}

#[test]
fn never_a_second_version_for_the_same_copy_but_the_default_is_finished() {
    let versions = [v(1, 1, true), v(2, 3, false)];
    assert_eq!(decide(&id(3), Some(NEW), &versions, Some(NEW), true), Update::SetDefault { version: 2 });
    assert!(matches!(decide(&id(3), Some(NEW), &versions, Some(NEW), false), Update::Nothing(_)));
    let done = [v(1, 1, false), v(2, 3, true)];
    assert!(
        matches!(decide(&id(3), Some(NEW), &done, Some(NEW), true), Update::Nothing(why) if why.contains("already"))
    );
}

#[test]
fn an_older_sources_copy_never_replaces_a_newer_ones() {
    let versions = [v(1, 2, true)];
    let update = decide(&id(3), Some(OLD), &versions, Some(NEW), true);
    assert!(matches!(&update, Update::Nothing(why) if why.contains("newer source")), "{update:?}");
    assert!(matches!(decide(&id(3), Some(OLD), &[], None, true), Update::Nothing(_)), "no version to start from");
}
