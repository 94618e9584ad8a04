//! `GET /v1/alerts`: the alert rules, the alerts firing now and those
//! resolved recently.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;

/// The rules in force, firing alerts, and resolved ones, newest first.
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let (firing, resolved) = state.alerts.view();
    Json(json!({
        "policy": state.alerts.policy(),
        "firing": firing,
        "resolved": resolved,
    }))
}
