//! Deregistration protection (issue 19): CopyImage does not carry it over, so a copy is given its source's
//! (EnableImageDeregistrationProtection, with the 24-hour cooldown when the source has it). Pure.

/// Deregistration protection as DescribeImages' `DeregistrationProtection` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protection {
    /// `disabled` (or never set).
    #[default]
    Off,
    /// `enabled` / `enabled-without-cooldown`, or `enabled-with-cooldown`.
    On { cooldown: bool },
    /// `disabled-until ...`: protection was turned off with a cooldown that has not ended; it still cannot be
    /// deregistered.
    CoolingDown,
}

impl Protection {
    /// From DescribeImages' value; `None` (never configured) and unknown values are `Off`.
    pub fn parse(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            Some(v) if v.starts_with("enabled") => {
                Protection::On { cooldown: v.contains("with-cooldown") && !v.contains("without") }
            }
            Some(v) if v.starts_with("disabled-until") => Protection::CoolingDown,
            _ => Protection::Off,
        }
    }

    /// Whether DeregisterImage would be refused now.
    pub fn blocks_deregistration(self) -> bool {
        !matches!(self, Protection::Off)
    }
}

/// What a copy needs so that it is protected as its source is: `Some(with_cooldown)` to call
/// EnableImageDeregistrationProtection, `None` when nothing is to be done. Protection is only ever added: a copy
/// whose source is not protected keeps whatever its owner gave it.
pub fn mirror(source: Protection, copy: Protection) -> Option<bool> {
    match (source, copy) {
        (Protection::On { cooldown }, Protection::On { cooldown: has }) if has || !cooldown => None,
        (Protection::On { cooldown }, _) => Some(cooldown),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_describe_images() {
        assert_eq!(Protection::parse(None), Protection::Off);
        assert_eq!(Protection::parse(Some("disabled")), Protection::Off);
        assert_eq!(Protection::parse(Some("enabled")), Protection::On { cooldown: false });
        assert_eq!(Protection::parse(Some("enabled-without-cooldown")), Protection::On { cooldown: false });
        assert_eq!(Protection::parse(Some("enabled-with-cooldown")), Protection::On { cooldown: true });
        assert_eq!(Protection::parse(Some("disabled-until 2026-12-01T10:00:00Z")), Protection::CoolingDown);
        assert!(Protection::CoolingDown.blocks_deregistration());
        assert!(!Protection::Off.blocks_deregistration());
    }

    #[test]
    fn copies_are_protected_as_their_source_only_ever_adding() {
        let on = Protection::On { cooldown: false };
        let cool = Protection::On { cooldown: true };
        assert_eq!(mirror(on, Protection::Off), Some(false));
        assert_eq!(mirror(cool, Protection::Off), Some(true));
        assert_eq!(mirror(cool, on), Some(true), "the cooldown is added");
        assert_eq!(mirror(on, cool), None, "a stronger protection is kept");
        assert_eq!(mirror(cool, cool), None);
        assert_eq!(mirror(Protection::Off, cool), None, "never removed");
        assert_eq!(mirror(Protection::CoolingDown, Protection::Off), None);
    }
}
