//! The service's "model", `sandbox-lexicon-1`: deterministic word lists in Chinese, English
//! and Russian that give a sentiment score, intents with confidences and the language.
//!
//! Chinese cues match as substrings, longest first, and a match hides the text it covered
//! from shorter cues (满意 inside 不满意 is not praise). English and Russian cues match whole
//! words of the lower-cased text, or word beginnings when written with a trailing `*`
//! (`refund*` matches `refunded`). A customer's line counts fully, an agent's a quarter, so
//! an agent's polite "thank you" does not hide an angry customer. This module owns the lists
//! and the arithmetic; the request checks live in `request`.

use std::cmp::Reverse;

use serde::Serialize;

use super::request::{Language, Line, Speaker};

/// How much an agent's line counts against a customer's.
const AGENT_WEIGHT: f64 = 0.25;
/// The score from which a text is positive (and, negated, negative).
const LABEL_THRESHOLD: f64 = 0.25;

/// Sentiment cues with their weight: positive praise, negative anger or disappointment.
const SENTIMENT: &[(&str, f64)] = &[
    ("谢谢", 1.0),
    ("感谢", 1.0),
    ("满意", 1.0),
    ("不错", 1.0),
    ("很好", 1.0),
    ("太好了", 2.0),
    ("不满意", -1.0),
    ("失望", -1.0),
    ("太慢", -1.0),
    ("生气", -2.0),
    ("愤怒", -2.0),
    ("气死", -2.0),
    ("太差", -2.0),
    ("差劲", -2.0),
    ("垃圾", -2.0),
    ("糟糕", -2.0),
    ("thank*", 1.0),
    ("great", 1.0),
    ("good", 1.0),
    ("happy", 1.0),
    ("appreciat*", 1.0),
    ("excellent", 2.0),
    ("perfect", 2.0),
    ("bad", -1.0),
    ("slow", -1.0),
    ("unhappy", -1.0),
    ("disappoint*", -1.0),
    ("terrible", -2.0),
    ("awful", -2.0),
    ("angry", -2.0),
    ("furious", -2.0),
    ("worst", -2.0),
    ("unacceptable", -2.0),
    ("спасибо", 1.0),
    ("благодар*", 1.0),
    ("хорошо", 1.0),
    ("довол*", 1.0),
    ("отлично", 2.0),
    ("плох*", -1.0),
    ("медленн*", -1.0),
    ("недовол*", -1.0),
    ("разочаров*", -1.0),
    ("ужас*", -2.0),
    ("отвратит*", -2.0),
    ("безобраз*", -2.0),
];

/// Intent labels and the cues that signal them.
const INTENTS: &[(&str, &[&str])] = &[
    (
        "refund",
        &[
            "退款",
            "退钱",
            "退货",
            "refund*",
            "reimburs*",
            "возврат*",
            "вернуть",
        ],
    ),
    (
        "complaint",
        &["投诉", "举报", "complain*", "жалоб*", "претензи*"],
    ),
    (
        "track_parcel",
        &[
            "快递",
            "物流",
            "包裹",
            "发货",
            "parcel*",
            "package*",
            "track*",
            "deliver*",
            "shipment*",
            "shipping",
            "посылк*",
            "доставк*",
            "трек*",
        ],
    ),
    (
        "payment",
        &[
            "付款",
            "支付",
            "付钱",
            "扣款",
            "pay*",
            "paid",
            "charge*",
            "оплат*",
            "платеж*",
            "платёж*",
            "заплат*",
        ],
    ),
    ("cancel_order", &["取消", "cancel*", "отмен*"]),
];

/// How positive or negative the customer is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Sentiment {
    /// `positive`, `neutral` or `negative`.
    pub(crate) label: &'static str,
    /// From -1.0 (angry) to 1.0 (delighted), two decimals.
    pub(crate) score: f64,
}

/// Something the customer wants.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Intent {
    pub(crate) label: &'static str,
    /// From 0.0 to 1.0, two decimals: 0.5 for one customer mention, 0.75 for two.
    pub(crate) confidence: f64,
}

/// The sentiment of `lines`: `(positive − negative) / (positive + negative + 2)` over the
/// weighted cue counts, so one strong cue (weight 2) or two mild ones reach ±0.5.
pub(crate) fn sentiment(lines: &[Line]) -> Sentiment {
    let cues: Vec<&str> = SENTIMENT.iter().map(|(cue, _)| *cue).collect();
    let (mut positive, mut negative) = (0.0, 0.0);
    for line in lines {
        let counts = hits(&line.text, &cues);
        for ((_, weight), count) in SENTIMENT.iter().zip(counts) {
            let amount = speaker_weight(line.speaker) * weight.abs() * count as f64;
            if *weight > 0.0 {
                positive += amount;
            } else {
                negative += amount;
            }
        }
    }
    let score = round2((positive - negative) / (positive + negative + 2.0));
    let label = if score >= LABEL_THRESHOLD {
        "positive"
    } else if score <= -LABEL_THRESHOLD {
        "negative"
    } else {
        "neutral"
    };
    Sentiment { label, score }
}

/// The intents `lines` signal, surest first: confidence `1 − 0.5^evidence` where evidence
/// is the weighted number of cue mentions.
pub(crate) fn intents(lines: &[Line]) -> Vec<Intent> {
    let mut found: Vec<Intent> = INTENTS
        .iter()
        .filter_map(|(label, cues)| {
            let evidence: f64 = lines
                .iter()
                .map(|line| {
                    let mentions: usize = hits(&line.text, cues).iter().sum();
                    speaker_weight(line.speaker) * mentions as f64
                })
                .sum();
            (evidence > 0.0).then(|| Intent {
                label,
                confidence: round2(1.0 - 0.5_f64.powf(evidence)),
            })
        })
        .collect();
    found.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then(a.label.cmp(b.label))
    });
    found
}

/// The language most of `lines` is written in; a Chinese character counts as three letters
/// of the others, and text without letters is English.
pub(crate) fn language(lines: &[Line]) -> Language {
    let (mut han, mut cyrillic, mut latin) = (0_usize, 0_usize, 0_usize);
    for c in lines.iter().flat_map(|line| line.text.chars()) {
        if is_han(c) {
            han += 3;
        } else if is_cyrillic(c) {
            cyrillic += 1;
        } else if c.is_ascii_alphabetic() {
            latin += 1;
        }
    }
    if han > 0 && han >= cyrillic && han >= latin {
        Language::Zh
    } else if cyrillic > 0 && cyrillic >= latin {
        Language::Ru
    } else {
        Language::En
    }
}

/// How often each of `cues` occurs in `text`, in the order of `cues`.
fn hits(text: &str, cues: &[&str]) -> Vec<usize> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !is_word_char(c))
        .filter(|word| !word.is_empty())
        .collect();
    let mut unmatched = lower.clone();
    let mut longest_first: Vec<usize> = (0..cues.len()).collect();
    longest_first.sort_by_key(|&index| Reverse(cues[index].chars().count()));
    let mut counts = vec![0; cues.len()];
    for index in longest_first {
        let cue = cues[index];
        counts[index] = if cue.chars().any(is_han) {
            let count = unmatched.matches(cue).count();
            unmatched = unmatched.replace(cue, " ");
            count
        } else {
            word_hits(&words, cue)
        };
    }
    counts
}

/// How many of `words` are `cue`, or begin with it when it ends in `*`.
fn word_hits(words: &[&str], cue: &str) -> usize {
    match cue.strip_suffix('*') {
        Some(stem) => words.iter().filter(|word| word.starts_with(stem)).count(),
        None => words.iter().filter(|word| **word == cue).count(),
    }
}

fn speaker_weight(speaker: Speaker) -> f64 {
    match speaker {
        Speaker::Customer => 1.0,
        Speaker::Agent => AGENT_WEIGHT,
    }
}

/// `value` to two decimals, never `-0`.
fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0 + 0.0
}

fn is_han(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}')
}

fn is_cyrillic(c: char) -> bool {
    matches!(c, '\u{0400}'..='\u{04FF}')
}

/// Letters and digits of the English and Russian words cues match; Chinese characters split
/// words like punctuation does.
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || is_cyrillic(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(text: &str) -> Vec<Line> {
        vec![Line {
            speaker: Speaker::Customer,
            text: text.into(),
        }]
    }

    fn labels(text: &str) -> Vec<(&'static str, f64)> {
        intents(&customer(text))
            .into_iter()
            .map(|intent| (intent.label, intent.confidence))
            .collect()
    }

    #[test]
    fn one_strong_cue_or_two_mild_ones_reach_half_way() {
        assert_eq!(sentiment(&customer("太生气了")).score, -0.5);
        assert_eq!(sentiment(&customer("bad and slow")).score, -0.5);
        assert_eq!(sentiment(&customer("bad")).score, -0.33);
        assert_eq!(sentiment(&customer("Спасибо!")).score, 0.33);
        assert_eq!(
            sentiment(&customer("ok")),
            Sentiment {
                label: "neutral",
                score: 0.0
            }
        );
    }

    #[test]
    fn a_longer_chinese_cue_hides_the_shorter_one_inside_it() {
        let unhappy = sentiment(&customer("我很不满意"));
        assert_eq!((unhappy.label, unhappy.score), ("negative", -0.33));
    }

    #[test]
    fn stems_match_word_beginnings_and_plain_cues_whole_words_only() {
        assert_eq!(labels("I was REFUNDED twice"), [("refund", 0.5)]);
        assert_eq!(labels("goodbye"), []);
        assert_eq!(sentiment(&customer("goodbye")).score, 0.0);
        assert_eq!(
            labels("Жалоба: где моя посылка? Жалобу приняли?"),
            [("complaint", 0.75), ("track_parcel", 0.5)]
        );
    }

    #[test]
    fn an_agents_politeness_does_not_outweigh_an_angry_customer() {
        let lines = vec![
            Line {
                speaker: Speaker::Agent,
                text: "Thank you for calling, thanks for waiting".into(),
            },
            Line {
                speaker: Speaker::Customer,
                text: "This is terrible, I want a refund".into(),
            },
        ];
        let mood = sentiment(&lines);
        assert_eq!((mood.label, mood.score), ("negative", -0.33));
        assert_eq!(
            intents(&lines),
            [Intent {
                label: "refund",
                confidence: 0.5
            }]
        );
    }

    #[test]
    fn the_dominant_script_names_the_language() {
        assert_eq!(language(&customer("我要refund")), Language::Zh);
        assert_eq!(language(&customer("Где посылка, ok?")), Language::Ru);
        assert_eq!(language(&customer("where is it")), Language::En);
        assert_eq!(language(&customer("12345 !!")), Language::En);
    }
}
