//! Masking of personal data in text that leaves a call: mainland mobile and
//! international phone numbers, mainland ID-card numbers (checksum-verified),
//! bank-card numbers (Luhn-verified) and e-mail addresses.
//!
//! What stays visible is what an agent needs to recognise the value: a phone
//! number's first three and last four digits (`138****8000`), an ID card's
//! region and last four (`110101********123X`), a card's issuer prefix and
//! last four (`622202******1234`), an address's first character and domain
//! (`a***@example.com`). Separators inside a number (`138 0013 8000`) are
//! kept. Digits that touch letters (`YT1234567890`, an order id) are not
//! personal data and stay as they are. Masking a masked text changes nothing.

use std::borrow::Cow;

/// `text` with every phone, ID-card and bank-card number and e-mail address masked.
pub fn mask(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    if !bytes.iter().any(|b| b.is_ascii_digit() || *b == b'@') {
        return Cow::Borrowed(text);
    }
    let emails = mask_emails(text);
    match mask_numbers(&emails) {
        Cow::Borrowed(_) => emails,
        Cow::Owned(masked) => Cow::Owned(masked),
    }
}

/// Characters of an e-mail address's local part.
fn is_local_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

/// Characters of a domain.
fn is_domain_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

fn mask_emails(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    for at in memchr_all(bytes, b'@') {
        if at < copied {
            continue;
        }
        let mut start = at;
        while start > copied && is_local_char(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < bytes.len() && is_domain_char(bytes[end]) {
            end += 1;
        }
        let domain = text[at + 1..end].trim_end_matches(['.', '-']);
        let end = at + 1 + domain.len();
        let is_email = start < at
            && domain.contains('.')
            && !domain.starts_with(['.', '-'])
            && domain.split('.').all(|label| !label.is_empty());
        if !is_email {
            continue;
        }
        out.push_str(&text[copied..start]);
        out.push(char::from(bytes[start]));
        out.push_str("***@");
        out.push_str(domain);
        copied = end;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

fn memchr_all(bytes: &[u8], needle: u8) -> impl Iterator<Item = usize> + '_ {
    bytes
        .iter()
        .enumerate()
        .filter(move |(_, b)| **b == needle)
        .map(|(i, _)| i)
}

/// Letters, digits and `_` join a number to a word it is part of.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn mask_numbers(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let starts_number = bytes[i].is_ascii_digit()
            || (bytes[i] == b'+' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit));
        if !starts_number || (i > 0 && is_word_byte(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let end = number_end(bytes, i);
        let touches_word = bytes.get(end).is_some_and(|b| is_word_byte(*b));
        if !touches_word && let Some(masked) = mask_run(&text[i..end]) {
            out.push_str(&text[copied..i]);
            out.push_str(&masked);
            copied = end;
        }
        i = end;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// The end of the number starting at `start`: digits, single spaces or dashes
/// between digits, and the `X` that ends an ID-card number.
fn number_end(bytes: &[u8], start: usize) -> usize {
    let mut end = start + usize::from(bytes[start] == b'+');
    loop {
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
        let separated_digit = matches!(bytes.get(end), Some(b' ' | b'-'))
            && bytes.get(end + 1).is_some_and(u8::is_ascii_digit);
        if !separated_digit {
            break;
        }
        end += 1;
    }
    let digits_only = bytes[start..end].iter().all(u8::is_ascii_digit);
    if digits_only && end - start == 17 && matches!(bytes.get(end), Some(b'X' | b'x')) {
        end += 1;
    }
    end
}

/// The masked form of the number `run`, or `None` if it is none of the kinds
/// masked. A run that is not one as a whole may hold one between separators.
fn mask_run(run: &str) -> Option<String> {
    if let Some(masked) = mask_whole(run) {
        return Some(masked);
    }
    if !run.contains([' ', '-']) {
        return None;
    }
    let mut any = false;
    let masked = split_keeping(run)
        .map(|part| match mask_whole(part) {
            Some(masked) => {
                any = true;
                masked
            }
            None => part.to_owned(),
        })
        .collect();
    any.then_some(masked)
}

/// `run` split into digit groups and the separators between them.
fn split_keeping(run: &str) -> impl Iterator<Item = &str> {
    let mut rest = run;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let len = match rest.find([' ', '-']) {
            Some(0) => 1,
            Some(at) => at,
            None => rest.len(),
        };
        let (part, tail) = rest.split_at(len);
        rest = tail;
        Some(part)
    })
}

fn mask_whole(run: &str) -> Option<String> {
    let plus = run.starts_with('+');
    let digits: Vec<u8> = run.bytes().filter(u8::is_ascii_digit).collect();
    let separated = run.contains([' ', '-']);
    if !separated && !plus && is_id_card(run.as_bytes()) {
        return Some(keep_digits(run, 6, 4));
    }
    let national = if plus {
        digits.strip_prefix(b"86")
    } else {
        digits
            .strip_prefix(b"0086")
            .or_else(|| digits.strip_prefix(b"86").filter(|rest| rest.len() == 11))
    };
    if let Some(mobile) = national.filter(|rest| is_mainland_mobile(rest)) {
        return Some(keep_digits(run, digits.len() - mobile.len() + 3, 4));
    }
    if is_mainland_mobile(&digits) && !plus {
        return Some(keep_digits(run, 3, 4));
    }
    if plus && (8..=15).contains(&digits.len()) {
        return Some(keep_digits(run, 3, 4));
    }
    if !plus && (13..=19).contains(&digits.len()) && luhn_valid(&digits) {
        return Some(keep_digits(run, 6, 4));
    }
    None
}

/// A mainland mobile number: 11 digits, `1` then `3`–`9`.
fn is_mainland_mobile(digits: &[u8]) -> bool {
    digits.len() == 11 && digits[0] == b'1' && (b'3'..=b'9').contains(&digits[1])
}

/// An 18-character mainland ID-card number whose check character (ISO 7064
/// MOD 11-2) is right.
fn is_id_card(bytes: &[u8]) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    if bytes.len() != 18 || !bytes[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = bytes[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    CHECK[(sum % 11) as usize] == bytes[17].to_ascii_uppercase()
}

/// Whether `digits` pass the Luhn check bank cards carry.
fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, digit)| {
            let d = u32::from(digit - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// `run` with every digit or `X` replaced by `*` except the first `front` and
/// the last `back` of them; `+` and separators stay.
fn keep_digits(run: &str, front: usize, back: usize) -> String {
    let total = run.bytes().filter(|b| b.is_ascii_alphanumeric()).count();
    let mut seen = 0;
    run.chars()
        .map(|c| {
            if !c.is_ascii_alphanumeric() {
                return c;
            }
            seen += 1;
            if seen <= front || seen > total.saturating_sub(back) {
                c
            } else {
                '*'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
