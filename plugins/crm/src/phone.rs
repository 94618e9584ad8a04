//! Callers' numbers as the CRM files them: E.164, such as `+8613800138000`, whatever way the
//! telephony side wrote them (`+86 138-0013-8000`, `0086…`, `13800138000`).

use switchboard_sdk::Error;

/// The fewest digits of an international number, country code included.
const MIN_DIGITS: usize = 8;
/// The most digits of an international number (E.164).
const MAX_DIGITS: usize = 15;

/// `raw` in E.164 form, or `invalid_input` when it is not a phone number.
///
/// `+…` and `00…` carry their country code; an 11-digit mainland mobile (`1[3-9]…`) and a
/// mainland number with the trunk prefix `0` (`010-…`) get `+86`; other digits are taken
/// to start with their country code. Spaces, dashes, dots and parentheses are ignored.
/// The message never repeats the number: it may end up in logs.
pub(crate) fn normalize(raw: &str) -> Result<String, Error> {
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
    if !(MIN_DIGITS..=MAX_DIGITS).contains(&international.len()) || international.starts_with('0') {
        return Err(Error::invalid_input(format!(
            "`phone` must have {MIN_DIGITS} to {MAX_DIGITS} digits with its country code, \
             which must not start with 0"
        )));
    }
    Ok(format!("+{international}"))
}

/// The digits of `text`, skipping separators.
fn digits_of(text: &str) -> Result<String, Error> {
    let mut digits = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => {
                return Err(Error::invalid_input(
                    "`phone` may hold only digits, an optional leading `+`, spaces, dashes, \
                     dots and parentheses",
                ));
            }
        }
    }
    Ok(digits)
}

/// An 11-digit mainland China mobile number without its country code.
fn is_mainland_mobile(digits: &str) -> bool {
    let bytes = digits.as_bytes();
    bytes.len() == 11 && bytes[0] == b'1' && (b'3'..=b'9').contains(&bytes[1])
}
