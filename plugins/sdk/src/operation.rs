//! Typed operations: JSON in, handler, JSON out; schemas on demand.

use std::fmt;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Context, Error};

/// A handler with its input and output types erased to JSON text.
type JsonHandler = Box<dyn Fn(&Context, &str) -> Result<String, Error>>;

/// One operation a connector offers: a name, a typed handler and its schemas.
///
/// ```
/// use switchboard_sdk::{Context, Error, Operation};
///
/// fn shout(_ctx: &Context, text: String) -> Result<String, Error> {
///     Ok(text.to_uppercase())
/// }
///
/// let operation = Operation::new("shout", "Upper-cases a text.", shout).idempotent();
/// let output = operation.invoke(&Context::default(), r#""hello""#);
/// assert_eq!(output, Ok(r#""HELLO""#.to_owned()));
/// ```
pub struct Operation {
    name: &'static str,
    description: &'static str,
    idempotent: bool,
    handler: JsonHandler,
    schemas: fn() -> (String, String),
}

impl Operation {
    /// An operation named `name` that parses its input as `In`, runs `handler`
    /// and returns the `Out` it produces as JSON.
    ///
    /// Input that does not parse as `In` fails with `invalid_input` before the
    /// handler runs. `In` and `Out` also give the schemas `describe` publishes.
    pub fn new<In, Out, F>(name: &'static str, description: &'static str, handler: F) -> Self
    where
        In: DeserializeOwned + JsonSchema,
        Out: Serialize + JsonSchema,
        F: Fn(&Context, In) -> Result<Out, Error> + 'static,
    {
        let handler = move |ctx: &Context, input: &str| {
            let input: In = serde_json::from_str(input)
                .map_err(|e| Error::invalid_input(format!("input of `{name}`: {e}")))?;
            let output = handler(ctx, input)?;
            serde_json::to_string(&output).map_err(|e| {
                Error::new(
                    "output_invalid",
                    format!("output of `{name}` cannot be written as JSON: {e}"),
                )
            })
        };
        Self {
            name,
            description,
            idempotent: false,
            handler: Box::new(handler),
            schemas: schemas::<In, Out>,
        }
    }

    /// Marks the operation idempotent: calling it twice with the same input has
    /// the effect of calling it once, so the host may retry or cache it.
    #[must_use]
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// The name callers use to invoke the operation.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// What the operation does, one sentence.
    pub fn description(&self) -> &'static str {
        self.description
    }

    /// Whether the operation was marked [`idempotent`](Self::idempotent).
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// Runs the operation on the JSON document `input`, returning a JSON document.
    pub fn invoke(&self, ctx: &Context, input: &str) -> Result<String, Error> {
        (self.handler)(ctx, input)
    }

    /// The JSON Schemas (draft 2020-12) of the input and the output, in that order.
    ///
    /// Generated on each call; only `describe` needs them.
    pub fn schemas(&self) -> (String, String) {
        (self.schemas)()
    }
}

impl fmt::Debug for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operation")
            .field("name", &self.name)
            .field("description", &self.description)
            .field("idempotent", &self.idempotent)
            .finish_non_exhaustive()
    }
}

/// Runs the operation called `name` among `operations`.
pub(crate) fn dispatch(
    connector: &str,
    operations: &[Operation],
    ctx: &Context,
    name: &str,
    input: &str,
) -> Result<String, Error> {
    let operation = operations
        .iter()
        .find(|operation| operation.name == name)
        .ok_or_else(|| {
            Error::new(
                "operation_not_found",
                format!("connector `{connector}` has no operation `{name}`"),
            )
        })?;
    operation.invoke(ctx, input)
}

/// The input schema (how `In` is read) and the output schema (how `Out` is written).
fn schemas<In: JsonSchema, Out: JsonSchema>() -> (String, String) {
    let settings = SchemaSettings::draft2020_12();
    let input = settings
        .clone()
        .for_deserialize()
        .into_generator()
        .into_root_schema_for::<In>();
    let output = settings
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<Out>();
    (input.as_value().to_string(), output.as_value().to_string())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::{Value, json};

    use super::*;

    /// Input of the fake `add` operation.
    #[derive(Deserialize, JsonSchema)]
    struct AddInput {
        /// First addend.
        a: i64,
        /// Second addend.
        b: i64,
    }

    /// Output of the fake `add` operation.
    #[derive(Serialize, JsonSchema)]
    struct Sum {
        /// The sum.
        sum: i64,
    }

    fn add(_ctx: &Context, input: AddInput) -> Result<Sum, Error> {
        Ok(Sum {
            sum: input.a + input.b,
        })
    }

    fn refuse(_ctx: &Context, _input: Value) -> Result<Value, Error> {
        Err(Error::retryable("busy", "try later"))
    }

    fn operations() -> Vec<Operation> {
        vec![
            Operation::new("add", "Adds two numbers.", add).idempotent(),
            Operation::new("refuse", "Always fails.", refuse),
            Operation::new("tenant", "Names the tenant.", |ctx: &Context, _: Value| {
                Ok(ctx.tenant.clone())
            }),
        ]
    }

    fn call(name: &str, input: &str) -> Result<String, Error> {
        let ctx = Context {
            tenant: "acme".to_owned(),
            ..Context::default()
        };
        dispatch("fake", &operations(), &ctx, name, input)
    }

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("schemas and outputs are JSON")
    }

    #[test]
    fn dispatch_runs_the_named_handler_on_parsed_input() {
        assert_eq!(
            call("add", r#"{"a": 2, "b": 40}"#),
            Ok(r#"{"sum":42}"#.into())
        );
        assert_eq!(call("tenant", "null"), Ok(r#""acme""#.into()));
    }

    #[test]
    fn dispatch_passes_handler_errors_through_unchanged() {
        assert_eq!(
            call("refuse", "{}"),
            Err(Error::retryable("busy", "try later"))
        );
    }

    #[test]
    fn unknown_operation_is_operation_not_found() {
        let error = call("subtract", "{}").expect_err("no such operation");
        assert_eq!(error.code, "operation_not_found");
        assert_eq!(
            error.message,
            "connector `fake` has no operation `subtract`"
        );
    }

    #[test]
    fn input_that_does_not_fit_the_type_is_invalid_input_with_serdes_reason() {
        let error = call("add", r#"{"a": 2}"#).expect_err("b is missing");
        assert_eq!(error.code, "invalid_input");
        assert!(error.message.contains("missing field `b`"), "{error}");

        let error = call("add", "not json").expect_err("not JSON");
        assert_eq!(error.code, "invalid_input");
        assert!(!error.retryable);
    }

    #[test]
    fn idempotent_is_off_unless_asked_for() {
        let operations = operations();
        assert!(operations[0].is_idempotent());
        assert!(!operations[1].is_idempotent());
        assert_eq!(operations[0].name(), "add");
        assert_eq!(operations[0].description(), "Adds two numbers.");
    }

    #[test]
    fn schemas_are_draft_2020_12_and_carry_field_docs() {
        let (input, output) = operations()[0].schemas();
        let input = parse(&input);
        let output = parse(&output);
        assert_eq!(
            input["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(input["type"], "object");
        assert_eq!(input["required"], json!(["a", "b"]));
        assert_eq!(input["properties"]["a"]["description"], "First addend.");
        assert_eq!(output["properties"]["sum"]["description"], "The sum.");
    }

    #[test]
    fn any_json_value_has_the_accept_everything_schema() {
        let (input, output) = operations()[1].schemas();
        assert_eq!(
            parse(&input)["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert!(parse(&output).get("type").is_none());
    }
}
