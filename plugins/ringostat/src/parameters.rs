//! The `parameters` operation: what an operator can map into an integration, per moment.
//!
//! Ringostat lets an integration pass up to 25 parameters chosen from a list; a Switchboard
//! subscription does the same with `params` read `from` event fields. This lists those
//! fields for each moment, with the Ringostat parameter each one needs.

use switchboard_sdk::{Context, Deserialize, Error, JsonSchema, Serialize};

use crate::moment::{Field, Moment};

/// Most parameters one subscription may map, as in Ringostat.
const MAX_PARAMS: u32 = 25;
/// The longest unknown moment echoed in an error message, in characters.
const ECHO_CHARS: usize = 64;

/// Which moments to describe.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ParametersInput {
    /// One moment, by Ringostat's name (`call_completed`) or its event kind
    /// (`call.completed`); all five when absent.
    #[serde(default)]
    moment: Option<String>,
}

/// The fields an integration can map, per moment.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Parameters {
    /// Most parameters one subscription may map.
    max_params: u32,
    /// The moments asked for, in the order of a call.
    moments: Vec<MomentFields>,
}

/// One moment and the fields its event carries.
#[derive(Serialize, JsonSchema)]
struct MomentFields {
    /// Ringostat's name of the moment, the value of its `event` parameter.
    moment: &'static str,
    /// The event kind it becomes, for a subscription's `kinds`.
    kind: &'static str,
    /// When Ringostat sends it.
    description: &'static str,
    /// The fields, in the README's order.
    fields: Vec<FieldInfo>,
}

/// One field a subscription parameter can be read `from`.
#[derive(Serialize, JsonSchema)]
struct FieldInfo {
    /// Its path in the event, e.g. `data.caller`.
    name: &'static str,
    /// What it holds.
    description: &'static str,
    /// The Ringostat parameter the integration must send for it; absent for fields
    /// Switchboard itself sets.
    #[serde(skip_serializing_if = "Option::is_none")]
    ringostat_param: Option<&'static str>,
}

impl From<&Field> for FieldInfo {
    fn from(field: &Field) -> Self {
        Self {
            name: field.path,
            description: field.description,
            ringostat_param: field.param,
        }
    }
}

/// Lists the mappable fields of one moment or of all five; an unknown moment is
/// `moment_unknown`.
pub(crate) fn parameters(_ctx: &Context, input: ParametersInput) -> Result<Parameters, Error> {
    let moments = match input.moment.as_deref().map(str::trim) {
        None | Some("") => Moment::ALL.to_vec(),
        Some(text) => vec![Moment::find(text).ok_or_else(|| unknown(text))?],
    };
    Ok(Parameters {
        max_params: MAX_PARAMS,
        moments: moments
            .into_iter()
            .map(|moment| MomentFields {
                moment: moment.name(),
                kind: moment.kind(),
                description: moment.description(),
                fields: moment.fields().map(FieldInfo::from).collect(),
            })
            .collect(),
    })
}

fn unknown(text: &str) -> Error {
    let shown: String = text.chars().take(ECHO_CHARS).collect();
    Error::new(
        "moment_unknown",
        format!(
            "`{shown}` is not a moment; use one of {} or their kinds {}",
            Moment::ALL.map(Moment::name).join(", "),
            crate::moment::KINDS.join(", ")
        ),
    )
}
