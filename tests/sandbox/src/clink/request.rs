//! The query parameters of Clink's `/interface/*` requests, checked into typed requests.
//!
//! This module owns what `res 2` (参数不正确, parameters incorrect) means: a required
//! parameter missing or empty, or one that is not in the shape Clink takes. Whether the
//! credentials are right, or the customer's number can be dialled, is the call center's
//! business (`center`).

use std::collections::HashMap;

use super::Res;

/// The longest `userField`, in characters; Clink writes it into the call record.
pub(crate) const MAX_USER_FIELD_CHARS: usize = 1024;

/// Who is asking: the enterprise, the agent (`cno`) and the MD5 of the agent's password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) enterprise_id: String,
    pub(crate) cno: String,
    pub(crate) pwd: String,
}

impl Credentials {
    /// `enterpriseId` and `cno` are digits, `pwd` is present; all three are required.
    pub(crate) fn parse(query: &HashMap<String, String>) -> Result<Self, Res> {
        Ok(Self {
            enterprise_id: digits(required(query, "enterpriseId")?, 1..=20)?,
            cno: digits(required(query, "cno")?, 1..=11)?,
            pwd: required(query, "pwd")?.to_owned(),
        })
    }
}

/// A `PreviewOutcall` request whose parameters are all in shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutcallRequest {
    pub(crate) credentials: Credentials,
    /// Checked for being a dialable number later (res 7), not here.
    pub(crate) customer_number: String,
    pub(crate) user_field: Option<String>,
    pub(crate) clid_left_number: Option<String>,
    pub(crate) sync: bool,
}

impl OutcallRequest {
    /// Checks `enterpriseId`, `cno`, `pwd`, `customerNumber` (required) and `userField`,
    /// `clidLeftNumber` (3–20 digits) and `sync` (`1` or `0`, default `0`), all optional.
    pub(crate) fn parse(query: &HashMap<String, String>) -> Result<Self, Res> {
        Ok(Self {
            credentials: Credentials::parse(query)?,
            customer_number: required(query, "customerNumber")?.to_owned(),
            user_field: optional(query, "userField").map(user_field).transpose()?,
            clid_left_number: optional(query, "clidLeftNumber")
                .map(|number| digits(number, 3..=20))
                .transpose()?,
            sync: match optional(query, "sync") {
                None | Some("0") => false,
                Some("1") => true,
                Some(_) => return Err(Res::ParametersIncorrect),
            },
        })
    }
}

/// A parameter that must be present and not empty.
fn required<'a>(query: &'a HashMap<String, String>, name: &str) -> Result<&'a str, Res> {
    optional(query, name).ok_or(Res::ParametersIncorrect)
}

/// A parameter given with a value; `userField=` with nothing after it is not given.
fn optional<'a>(query: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    query
        .get(name)
        .map(String::as_str)
        .filter(|value| !value.is_empty())
}

/// `value` when it is at most [`MAX_USER_FIELD_CHARS`] long.
fn user_field(value: &str) -> Result<String, Res> {
    if value.chars().count() <= MAX_USER_FIELD_CHARS {
        Ok(value.to_owned())
    } else {
        Err(Res::ParametersIncorrect)
    }
}

/// `value` when it is ASCII digits with a length in `lengths`.
fn digits(value: &str, lengths: std::ops::RangeInclusive<usize>) -> Result<String, Res> {
    if lengths.contains(&value.len()) && value.bytes().all(|byte| byte.is_ascii_digit()) {
        Ok(value.to_owned())
    } else {
        Err(Res::ParametersIncorrect)
    }
}

/// Whether Clink would dial `number`: a mainland mobile (11 digits, `13`–`19`), a fixed
/// line with its area code (`0` then 9–11 more digits) or a `400`/`800` service number
/// (10 digits).
pub(crate) fn is_dialable(number: &str) -> bool {
    let bytes = number.as_bytes();
    if !bytes.iter().all(u8::is_ascii_digit) {
        return false;
    }
    match bytes {
        [b'1', b'3'..=b'9', ..] => bytes.len() == 11,
        [b'0', b'1'..=b'9', ..] => (10..=12).contains(&bytes.len()),
        [b'4' | b'8', b'0', b'0', ..] => bytes.len() == 10,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    const BASE: [(&str, &str); 4] = [
        ("enterpriseId", "7000001"),
        ("cno", "2000"),
        ("pwd", "abc"),
        ("customerNumber", "13800138000"),
    ];

    fn with(extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut pairs = query(&BASE);
        pairs.extend(query(extra));
        pairs
    }

    #[test]
    fn the_optional_parameters_default_to_absent_and_asynchronous() {
        let request = OutcallRequest::parse(&with(&[("userField", "")]));
        assert_eq!(
            request.map(|r| (r.user_field, r.clid_left_number, r.sync)),
            Ok((None, None, false))
        );
        let request = OutcallRequest::parse(&with(&[
            ("userField", "ticket=17"),
            ("clidLeftNumber", "02150001234"),
            ("sync", "1"),
        ]));
        assert_eq!(
            request.map(|r| (r.user_field, r.clid_left_number, r.sync)),
            Ok((
                Some("ticket=17".to_owned()),
                Some("02150001234".to_owned()),
                true
            ))
        );
    }

    #[test]
    fn a_missing_empty_or_malformed_parameter_is_res_2() {
        for name in ["enterpriseId", "cno", "pwd", "customerNumber"] {
            let mut missing = query(&BASE);
            missing.remove(name);
            assert_eq!(
                OutcallRequest::parse(&missing),
                Err(Res::ParametersIncorrect),
                "{name}"
            );
            let empty = with(&[(name, "")]);
            assert_eq!(
                OutcallRequest::parse(&empty),
                Err(Res::ParametersIncorrect),
                "{name}"
            );
        }
        let long_field = "x".repeat(MAX_USER_FIELD_CHARS + 1);
        for bad in [
            ("enterpriseId", "ent-1"),
            ("cno", "20a0"),
            ("sync", "true"),
            ("sync", "2"),
            ("clidLeftNumber", "12"),
            ("clidLeftNumber", "0215000-1234"),
            ("userField", long_field.as_str()),
        ] {
            assert_eq!(
                OutcallRequest::parse(&with(&[bad])),
                Err(Res::ParametersIncorrect),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn mobiles_fixed_lines_and_service_numbers_are_dialable() {
        for number in [
            "13800138000",
            "19912345678",
            "01058001234",
            "057188001234",
            "4008001234",
        ] {
            assert!(is_dialable(number), "{number}");
        }
        for number in [
            "",
            "12345678901",
            "1380013800",
            "138001380001",
            "0",
            "4001234",
            "+8613800138000",
            "abc",
        ] {
            assert!(!is_dialable(number), "{number}");
        }
    }
}
