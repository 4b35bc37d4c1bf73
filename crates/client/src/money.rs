//! Amounts as people write them ("800", "800.5", "800.00") and as the contracts carry them:
//! whole minor units (fen for CNY). Two decimal places, the minor unit of the currencies the
//! playbooks use; floating point never touches an amount.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("no amount given")]
    Empty,
    #[error(
        "{0:?} is not an amount: write digits with an optional decimal point, e.g. 800 or 800.50"
    )]
    NotANumber(String),
    #[error("{0:?} has more than 2 decimal places")]
    TooPrecise(String),
    #[error("{0:?} is too large")]
    TooLarge(String),
}

/// Parses a non-negative decimal with at most two places into minor units:
/// `"800"` → 80000, `"800.5"` → 80050, `"0.01"` → 1.
pub fn parse_minor(text: &str) -> Result<i64, AmountError> {
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    let not_a_number = || AmountError::NotANumber(text.to_string());
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    // Digits on both sides of the point: "5." and ".5" are more likely typos than amounts.
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_a_number());
    }
    let fraction = match fraction {
        None => "",
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => f,
        Some(_) => return Err(not_a_number()),
    };
    if fraction.len() > 2 {
        return Err(AmountError::TooPrecise(text.to_string()));
    }
    let too_large = || AmountError::TooLarge(text.to_string());
    let whole: i64 = whole.parse().map_err(|_| too_large())?;
    let cents: i64 = format!("{fraction:0<2}").parse().expect("two digits");
    whole
        .checked_mul(100)
        .and_then(|m| m.checked_add(cents))
        .ok_or_else(too_large)
}

pub use redress_proto::types::format_minor;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_become_minor_units() {
        for (text, minor) in [
            ("800", 80_000),
            ("800.00", 80_000),
            ("800.5", 80_050),
            ("800.05", 80_005),
            ("0.01", 1),
            ("0", 0),
            ("007.10", 710),
        ] {
            assert_eq!(parse_minor(text), Ok(minor), "{text}");
        }
    }

    #[test]
    fn bad_amounts_are_refused_with_the_reason() {
        assert_eq!(parse_minor(""), Err(AmountError::Empty));
        assert_eq!(
            parse_minor("800.001"),
            Err(AmountError::TooPrecise("800.001".into()))
        );
        for bad in [
            "-5", "+5", "5.", ".5", "1,000", "8e2", "abc", " 5", "5 ", "1.2.3", "五",
        ] {
            assert_eq!(
                parse_minor(bad),
                Err(AmountError::NotANumber(bad.into())),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_minor("92233720368547758.08"),
            Err(AmountError::TooLarge(_))
        ));
        assert!(matches!(
            parse_minor("99999999999999999999"),
            Err(AmountError::TooLarge(_))
        ));
        assert_eq!(parse_minor("92233720368547758.07"), Ok(i64::MAX));
    }

    #[test]
    fn minor_units_print_with_two_places() {
        assert_eq!(format_minor(80_000), "800.00");
        assert_eq!(format_minor(5), "0.05");
        assert_eq!(format_minor(0), "0.00");
        assert_eq!(format_minor(-150), "-1.50");
        assert_eq!(format_minor(i64::MIN), "-92233720368547758.08");
    }

    #[test]
    fn parsing_what_was_printed_gives_the_amount_back() {
        for minor in [0, 1, 99, 100, 12_345, 80_000, i64::MAX] {
            assert_eq!(parse_minor(&format_minor(minor)), Ok(minor));
        }
    }
}
