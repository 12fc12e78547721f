//! Unit tests of `errors`.

use super::*;

#[test]
fn known_codes_have_their_class_and_unknown_are_transient() {
    assert_eq!(classify("RequestLimitExceeded"), ErrorClass::Throttled);
    assert_eq!(classify("ResourceLimitExceeded"), ErrorClass::Capacity);
    assert_eq!(classify("InvalidAMIID.NotFound"), ErrorClass::Permanent);
    assert_eq!(classify("InternalError"), ErrorClass::Transient);
    assert_eq!(classify("SomethingNew"), ErrorClass::Transient);
}

#[test]
fn table_has_no_duplicate_codes() {
    for (i, (code, _, _)) in ERROR_TABLE.iter().enumerate() {
        assert!(ERROR_TABLE[i + 1..].iter().all(|(c, _, _)| c != code), "{code} twice");
    }
}

#[test]
fn display_explains_the_code() {
    let e = PortError::from_code("OptInRequired", "You are not subscribed");
    assert_eq!(e.to_string(), "OptInRequired (the account has not opted in to the region): You are not subscribed");
}
