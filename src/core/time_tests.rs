//! Unit tests of `time`.

use super::*;

#[test]
fn round_trips_and_refuses_what_it_cannot_read() {
    for text in ["1970-01-01T00:00:00.000Z", "2026-11-29T10:15:30.000Z", "2028-02-29T23:59:59.000Z"] {
        assert_eq!(format_rfc3339(parse_rfc3339(text).unwrap()), text);
    }
    assert_eq!(parse_rfc3339("2026-11-29T10:00:00Z"), Some(1_795_946_400));
    assert_eq!(parse_rfc3339("2026-11-29T10:00:00.123Z"), Some(1_795_946_400));
    for bad in ["", "2026-11-29", "2026-13-01T00:00:00Z", "2026-11-29T10:00:00+02:00", "yesterday, 10 o'clock"] {
        assert_eq!(parse_rfc3339(bad), None, "{bad}");
    }
}
