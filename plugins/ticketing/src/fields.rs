//! Custom ticket fields: the names callers use and the numeric field ids the provider
//! knows, from the `custom_fields` config key (a JSON object such as
//! `{"channel": 360000001001}`).
//!
//! A name made only of digits is taken as a field id as it is, so any field can be set
//! without configuring a name for it.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use switchboard_sdk::{Error, config};

use crate::api::ProviderCustomField;

/// Field names to provider field ids.
pub(crate) struct FieldMap(BTreeMap<String, u64>);

impl FieldMap {
    /// The mapping in the `custom_fields` config key; unset means no names.
    pub(crate) fn from_config() -> Result<Self, Error> {
        let Some(text) = config::get("custom_fields").filter(|text| !text.trim().is_empty()) else {
            return Ok(Self(BTreeMap::new()));
        };
        serde_json::from_str(&text).map(Self).map_err(|e| {
            Error::new(
                "config_invalid",
                format!(
                    "config key `custom_fields` must be a JSON object of field names to numeric field ids: {e}"
                ),
            )
        })
    }

    /// `fields` as the provider's `custom_fields`: `[{"id", "value"}]`.
    ///
    /// Fails with `field_unknown` for a name that is neither configured nor digits, and
    /// `invalid_input` for a value that is an object or a list of non-texts.
    pub(crate) fn to_provider(
        &self,
        fields: &BTreeMap<String, Value>,
    ) -> Result<Vec<Value>, Error> {
        fields
            .iter()
            .map(|(name, value)| {
                let id = self.id_of(name)?;
                check_value(name, value)?;
                Ok(json!({ "id": id, "value": value }))
            })
            .collect()
    }

    /// The provider's `custom_fields` by name; fields without a value are left out, and ids
    /// without a configured name appear as their digits.
    pub(crate) fn named(&self, fields: &[ProviderCustomField]) -> BTreeMap<String, Value> {
        fields
            .iter()
            .filter(|field| !field.value.is_null())
            .map(|field| {
                let name = self
                    .0
                    .iter()
                    .find(|(_, id)| **id == field.id)
                    .map_or_else(|| field.id.to_string(), |(name, _)| name.clone());
                (name, field.value.clone())
            })
            .collect()
    }

    fn id_of(&self, name: &str) -> Result<u64, Error> {
        if let Some(id) = self.0.get(name) {
            return Ok(*id);
        }
        if let Ok(id) = name.parse::<u64>() {
            return Ok(id);
        }
        let known: Vec<&str> = self.0.keys().map(String::as_str).collect();
        Err(Error::new(
            "field_unknown",
            format!(
                "no custom field is named `{name}`; configured names: {}; or give the numeric field id",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        ))
    }
}

/// A custom field value is a text, number, boolean, null, or a list of texts (multi-select).
fn check_value(name: &str, value: &Value) -> Result<(), Error> {
    let fits = match value {
        Value::Object(_) => false,
        Value::Array(items) => items.iter().all(Value::is_string),
        _ => true,
    };
    if fits {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "field `{name}` must be a text, number, boolean, null or a list of texts"
        )))
    }
}
