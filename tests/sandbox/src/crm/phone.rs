//! How the CRM reads a phone number: the digits of its international form, so that
//! `+86 138-0013-8000`, `0086 13800138000` and `13800138000` all name one customer.
//!
//! This module owns the reading rules only; who has which number lives in `store`.

/// The fewest digits an international number has, country code included.
const MIN_DIGITS: usize = 8;
/// The most digits an international number has (E.164).
const MAX_DIGITS: usize = 15;

/// What a phone number must look like, for error messages.
pub(crate) const PHONE_RULES: &str = "phone must be digits with an optional leading `+` or \
    `00`, spaces, dashes, dots or parentheses allowed, 8 to 15 digits with the country code; \
    a number without one is read as mainland China (+86)";

/// The digits of `raw` in international form, country code first and no `+`, such as
/// `8613800138000`; `None` when `raw` is not a phone number.
///
/// `+…` and `00…` carry their country code; an 11-digit mainland mobile (`1[3-9]…`) and a
/// mainland number with the trunk prefix `0` (`010-…`) get `86`; other digits are taken to
/// start with their country code already.
pub(crate) fn normalize(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let (has_plus, rest) = match trimmed.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let digits = digits_of(rest)?;
    let international = if has_plus {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_owned()
    } else if is_mainland_mobile(&digits) {
        format!("86{digits}")
    } else if let Some(rest) = digits.strip_prefix('0') {
        format!("86{rest}")
    } else {
        digits
    };
    let plausible =
        (MIN_DIGITS..=MAX_DIGITS).contains(&international.len()) && !international.starts_with('0');
    plausible.then_some(international)
}

/// The digits of `text`, skipping separators; `None` if anything else appears.
fn digits_of(text: &str) -> Option<String> {
    let mut digits = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    Some(digits)
}

/// An 11-digit mainland China mobile number without its country code.
fn is_mainland_mobile(digits: &str) -> bool {
    let bytes = digits.as_bytes();
    bytes.len() == 11 && bytes[0] == b'1' && (b'3'..=b'9').contains(&bytes[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_way_of_writing_a_mainland_mobile_reads_the_same() {
        for written in [
            "+8613800138000",
            "+86 138 0013 8000",
            "0086 138-0013-8000",
            "008613800138000",
            "13800138000",
            "138-0013-8000",
            "8613800138000",
            " +86 (138) 0013.8000 ",
        ] {
            assert_eq!(
                normalize(written).as_deref(),
                Some("8613800138000"),
                "{written:?}"
            );
        }
    }

    #[test]
    fn landlines_and_other_countries_keep_or_gain_their_country_code() {
        assert_eq!(normalize("010-1234 5678").as_deref(), Some("861012345678"));
        assert_eq!(
            normalize("+7 916 123-45-67").as_deref(),
            Some("79161234567")
        );
        assert_eq!(
            normalize("+1 (415) 555-0123").as_deref(),
            Some("14155550123")
        );
    }

    #[test]
    fn letters_misplaced_plus_signs_and_implausible_lengths_are_not_numbers() {
        for written in [
            "",
            "   ",
            "abc",
            "138001380OO",
            "86+13800138000",
            "++8613800138000",
            "+1234567",
            "+1234567890123456",
            "+0123456789",
            "0000",
        ] {
            assert_eq!(normalize(written), None, "{written:?}");
        }
    }
}
