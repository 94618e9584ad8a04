//! The five moments Ringostat sends webhooks at, the event kinds they become, and the
//! catalogue of fields an operator can map from each.

/// A moment of a call, as Ringostat's `event` parameter names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moment {
    /// `call_initiated`: the call reached a tracked number.
    CallInitiated,
    /// `forwarding_step`: one step of the forwarding scheme rings an extension.
    ForwardingStep,
    /// `call_answered`: an extension picked up.
    CallAnswered,
    /// `call_completed`: the call ended, answered or not.
    CallCompleted,
    /// `rating_done`: the caller finished the rating menu.
    RatingDone,
}

/// Every event kind the connector emits, in the order of a call.
pub(crate) const KINDS: &[&str] = &[
    "call.initiated",
    "call.forwarded",
    "call.answered",
    "call.completed",
    "call.rated",
];

impl Moment {
    /// Every moment, in the order of a call.
    pub(crate) const ALL: [Moment; 5] = [
        Moment::CallInitiated,
        Moment::ForwardingStep,
        Moment::CallAnswered,
        Moment::CallCompleted,
        Moment::RatingDone,
    ];

    /// The value of Ringostat's `event` parameter.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Moment::CallInitiated => "call_initiated",
            Moment::ForwardingStep => "forwarding_step",
            Moment::CallAnswered => "call_answered",
            Moment::CallCompleted => "call_completed",
            Moment::RatingDone => "rating_done",
        }
    }

    /// The kind of the event it becomes.
    pub(crate) fn kind(self) -> &'static str {
        KINDS[self as usize]
    }

    /// What the moment is, for operators.
    pub(crate) fn description(self) -> &'static str {
        match self {
            Moment::CallInitiated => {
                "Before the call: the caller reached a tracked number; carries the ad source."
            }
            Moment::ForwardingStep => {
                "Each step of the forwarding scheme: an extension is rung (one event per step)."
            }
            Moment::CallAnswered => "Pick-up: tells which extension answered.",
            Moment::CallCompleted => {
                "After the call: its outcome, durations and recording, answered or missed."
            }
            Moment::RatingDone => {
                "After the rating menu: the caller's rating and the manager who took the call."
            }
        }
    }

    /// The moment Ringostat's `event` value names.
    pub(crate) fn named(name: &str) -> Option<Moment> {
        Moment::ALL.into_iter().find(|moment| moment.name() == name)
    }

    /// The moment named by Ringostat's `event` value or by the event kind.
    pub(crate) fn find(text: &str) -> Option<Moment> {
        Moment::named(text).or_else(|| Moment::ALL.into_iter().find(|moment| moment.kind() == text))
    }

    /// The fields an event of this moment can carry, as paths a subscription's `from` reads.
    pub(crate) fn fields(self) -> impl Iterator<Item = &'static Field> {
        FIELDS
            .iter()
            .filter(move |field| field.moments.is_empty() || field.moments.contains(&self))
    }
}

/// One field of the normalized event.
#[derive(Debug)]
pub(crate) struct Field {
    /// Its path in the event, e.g. `data.caller`.
    pub(crate) path: &'static str,
    /// The Ringostat parameter it comes from, if any.
    pub(crate) param: Option<&'static str>,
    /// What it holds.
    pub(crate) description: &'static str,
    /// The moments that carry it; empty means every moment.
    moments: &'static [Moment],
}

const ANSWERED_AND_STEPS: &[Moment] = &[Moment::ForwardingStep, Moment::CallAnswered];
const WITH_AGENT: &[Moment] = &[
    Moment::ForwardingStep,
    Moment::CallAnswered,
    Moment::CallCompleted,
    Moment::RatingDone,
];
const COMPLETED: &[Moment] = &[Moment::CallCompleted];

const fn field(
    path: &'static str,
    param: Option<&'static str>,
    description: &'static str,
    moments: &'static [Moment],
) -> Field {
    Field {
        path,
        param,
        description,
        moments,
    }
}

/// Every field, in the order the README lists them.
const FIELDS: &[Field] = &[
    field(
        "id",
        None,
        "The event id, `ringostat:<uniqueid>:<moment>` (plus `:<step>` for forwarding steps); the same when Ringostat resends.",
        &[],
    ),
    field(
        "kind",
        None,
        "`call.initiated`, `call.forwarded`, `call.answered`, `call.completed` or `call.rated`.",
        &[],
    ),
    field(
        "subject",
        Some("uniqueid"),
        "The call id; the events of one call are delivered in order.",
        &[],
    ),
    field(
        "time_ms",
        None,
        "When Switchboard received the webhook, in milliseconds since the Unix epoch.",
        &[],
    ),
    field(
        "data.call_id",
        Some("uniqueid"),
        "Ringostat's id of the call.",
        &[],
    ),
    field(
        "data.moment",
        Some("event"),
        "Ringostat's name of the moment, e.g. `call_completed`.",
        &[],
    ),
    field(
        "data.caller",
        Some("caller"),
        "The caller's phone number.",
        &[],
    ),
    field(
        "data.called",
        Some("dst"),
        "The tracked number the caller dialled.",
        &[],
    ),
    field(
        "data.direction",
        Some("call_type"),
        "`in` for an incoming call, `out` for a callback.",
        &[],
    ),
    field(
        "data.time",
        Some("calldate"),
        "When the call started, as Ringostat writes it (`YYYY-MM-DD HH:MM:SS`).",
        &[],
    ),
    field(
        "data.utm.source",
        Some("utm_source"),
        "The ad source that brought the caller, e.g. `google`.",
        &[],
    ),
    field(
        "data.utm.medium",
        Some("utm_medium"),
        "The ad medium, e.g. `cpc`.",
        &[],
    ),
    field(
        "data.utm.campaign",
        Some("utm_campaign"),
        "The ad campaign.",
        &[],
    ),
    field(
        "data.step",
        Some("step"),
        "The 1-based step of the forwarding scheme (for `call.answered`, the step that answered).",
        ANSWERED_AND_STEPS,
    ),
    field(
        "data.agent",
        Some("employee"),
        "The extension rung at this step, or the manager who answered the call.",
        WITH_AGENT,
    ),
    field(
        "data.disposition",
        Some("disposition"),
        "The outcome: `answered`, `no_answer`, `busy` or `failed`.",
        COMPLETED,
    ),
    field(
        "data.duration_s",
        Some("duration"),
        "The whole call in seconds, ringing included.",
        COMPLETED,
    ),
    field(
        "data.talk_s",
        Some("billsec"),
        "The conversation in seconds; 0 for a missed call.",
        COMPLETED,
    ),
    field(
        "data.recording_url",
        Some("recording"),
        "Where the recording of an answered call can be downloaded.",
        COMPLETED,
    ),
    field(
        "data.rating",
        Some("rating"),
        "The caller's rating from the rating menu, a whole number (1-5 in the default menu).",
        &[Moment::RatingDone],
    ),
];
