//! The JSON Schemas a connector publishes, compiled once at install.

use serde_json::Value;

use crate::model::OperationInfo;
use crate::names::OperationName;

/// An operation with its schemas parsed and its input validator compiled.
pub struct CompiledOperation {
    /// What `describe()` said about it.
    pub info: OperationInfo,
    /// The input schema as JSON.
    pub input_schema: Value,
    /// The output schema as JSON.
    pub output_schema: Value,
    validator: jsonschema::Validator,
}

/// Most schema violations listed in one error message.
const MAX_LISTED_VIOLATIONS: usize = 5;

impl CompiledOperation {
    /// Parses and compiles the schemas of `info`.
    pub fn compile(info: OperationInfo) -> Result<Self, String> {
        OperationName::parse(&info.name).map_err(|err| err.to_string())?;
        let parse = |which: &str, text: &str| {
            serde_json::from_str::<Value>(text).map_err(|err| {
                format!(
                    "the {which} schema of operation `{}` is not JSON: {err}",
                    info.name
                )
            })
        };
        let input_schema = parse("input", &info.input_schema)?;
        let output_schema = parse("output", &info.output_schema)?;
        let validator = jsonschema::validator_for(&input_schema).map_err(|err| {
            format!(
                "the input schema of operation `{}` is not a valid JSON Schema: {err}",
                info.name
            )
        })?;
        jsonschema::meta::validate(&output_schema).map_err(|err| {
            format!(
                "the output schema of operation `{}` is not a valid JSON Schema: {err}",
                info.name
            )
        })?;
        Ok(Self {
            info,
            input_schema,
            output_schema,
            validator,
        })
    }

    /// Checks `input` against the input schema; the error lists the violations.
    pub fn validate_input(&self, input: &Value) -> Result<(), String> {
        let violations: Vec<String> = self
            .validator
            .iter_errors(input)
            .take(MAX_LISTED_VIOLATIONS)
            .map(|err| {
                let path = err.instance_path().to_string();
                let at = if path.is_empty() {
                    "/".to_owned()
                } else {
                    path
                };
                format!("{at}: {err}")
            })
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(input_schema: &str) -> OperationInfo {
        OperationInfo {
            name: "track".into(),
            description: "d".into(),
            input_schema: input_schema.into(),
            output_schema: "{}".into(),
            idempotent: true,
        }
    }

    #[test]
    fn input_that_breaks_the_schema_is_refused_with_the_path_and_rule() {
        let schema = r#"{"type":"object","required":["carrier"],"properties":{"carrier":{"type":"string"}}}"#;
        let compiled = CompiledOperation::compile(op(schema)).expect("valid schema");
        assert!(
            compiled
                .validate_input(&serde_json::json!({"carrier": "zto"}))
                .is_ok()
        );
        let err = compiled
            .validate_input(&serde_json::json!({"carrier": 5}))
            .expect_err("wrong type");
        assert_eq!(err, r#"/carrier: 5 is not of type "string""#);
        let err = compiled
            .validate_input(&serde_json::json!({}))
            .expect_err("missing");
        assert_eq!(err, r#"/: "carrier" is a required property"#);
    }

    #[test]
    fn a_schema_that_is_not_json_or_not_a_schema_is_refused() {
        assert!(CompiledOperation::compile(op("{not json")).is_err());
        assert!(CompiledOperation::compile(op(r#"{"type": 12}"#)).is_err());
    }

    #[test]
    fn an_invalid_operation_name_is_refused() {
        let mut info = op("{}");
        info.name = "Track Parcel".into();
        assert!(CompiledOperation::compile(info).is_err());
    }
}
