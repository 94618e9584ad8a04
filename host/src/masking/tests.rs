use proptest::prelude::*;

use super::*;

#[test]
fn mainland_mobiles_keep_three_and_four_digits_with_or_without_country_code() {
    for (text, masked) in [
        ("13800138000", "138****8000"),
        ("+8613800138000", "+86138****8000"),
        ("+86 138 0013 8000", "+86 138 **** 8000"),
        ("008613800138000", "0086138****8000"),
        ("8613800138000", "86138****8000"),
        ("138-0013-8000", "138-****-8000"),
        ("caller 13800138000, again", "caller 138****8000, again"),
        ("+4915112345678", "+491******5678"),
    ] {
        assert_eq!(mask(text), masked, "{text}");
    }
}

#[test]
fn id_cards_with_a_valid_check_character_keep_region_and_last_four() {
    assert_eq!(mask("id 11010519491231002X"), "id 110105********002X");
    assert_eq!(mask("11010519491231002x"), "110105********002x");
    assert_eq!(
        mask("110105194912310021"),
        "110105194912310021",
        "a wrong check character is not an ID card (nor a valid card number)"
    );
}

#[test]
fn bank_cards_that_pass_luhn_keep_issuer_and_last_four() {
    assert_eq!(mask("6222021234567890128"), "622202*********0128");
    assert_eq!(mask("4111 1111 1111 1111"), "4111 11** **** 1111");
    assert_eq!(mask("4111111111111112"), "4111111111111112", "fails Luhn");
}

#[test]
fn emails_keep_the_first_character_and_the_domain() {
    assert_eq!(mask("from alice.w@example.com."), "from a***@example.com.");
    assert_eq!(mask("13800138000@qq.com"), "1***@qq.com");
    assert_eq!(mask("not@an-address"), "not@an-address");
    assert_eq!(mask("@example.com"), "@example.com");
}

#[test]
fn numbers_that_are_part_of_a_word_or_too_short_stay() {
    for text in [
        "YT1234567890",
        "order A-1001 for 2 items",
        "ORD13800138000",
        "13800138000abc",
        "2025-08-31T06:26:00Z",
        "HTTP 503",
    ] {
        assert_eq!(mask(text), text);
    }
}

fn mobile() -> impl Strategy<Value = String> {
    ("1[3-9][0-9]{9}").prop_map(|digits| digits)
}

fn id_card() -> impl Strategy<Value = String> {
    "[1-6][0-9]{16}".prop_map(|body| {
        let check = (0..=10u8)
            .map(|i| {
                let c = b"10X98765432"[usize::from(i)];
                format!("{body}{}", char::from(c))
            })
            .find(|candidate| is_id_card(candidate.as_bytes()));
        check.expect("one check character fits")
    })
}

fn bank_card() -> impl Strategy<Value = String> {
    "[3-6][0-9]{14,17}".prop_map(|body| {
        (0..=9)
            .map(|d| format!("{body}{d}"))
            .find(|candidate| luhn_valid(candidate.as_bytes()))
            .expect("one check digit fits")
    })
}

fn email() -> impl Strategy<Value = String> {
    ("[a-z][a-z0-9._]{1,12}", "[a-z]{2,10}\\.(com|cn|org)").prop_map(|(l, d)| format!("{l}@{d}"))
}

fn personal() -> impl Strategy<Value = String> {
    prop_oneof![mobile(), id_card(), bank_card(), email()]
}

proptest! {
    #[test]
    fn personal_data_never_survives_in_any_surrounding_text(
        before in "\\PC{0,20}",
        value in personal(),
        after in "\\PC{0,20}",
    ) {
        let text = format!("{before}|{value}|{after}");
        let masked = mask(&text);
        prop_assert!(!masked.contains(&value), "{text} -> {masked}");
    }

    #[test]
    fn masking_twice_is_masking_once(text in "\\PC{0,60}") {
        let once = mask(&text).into_owned();
        prop_assert_eq!(mask(&once), once.as_str());
    }

    #[test]
    fn numbers_with_separators_are_masked_too(value in prop_oneof![mobile(), bank_card()]) {
        let grouped: String = value
            .chars()
            .enumerate()
            .flat_map(|(i, c)| (i > 0 && i % 4 == 0).then_some(' ').into_iter().chain([c]))
            .collect();
        let masked = mask(&grouped);
        prop_assert!(masked.matches('*').count() >= 4, "{grouped} -> {masked}");
    }

    #[test]
    fn text_without_digits_or_at_signs_is_untouched(text in "[^0-9@]{0,80}") {
        prop_assert!(matches!(mask(&text), Cow::Borrowed(_)));
    }
}
