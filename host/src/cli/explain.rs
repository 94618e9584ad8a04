//! What to do about each error code the API answers with: the CLI prints it
//! under the host's own message.

/// A hint for the API error `code`, or `None` for a connector's own code.
pub fn explain(code: &str) -> Option<&'static str> {
    Some(match code {
        "route_not_found" => {
            "the host has no such route: is --url a Switchboard host of this version?"
        }
        "method_not_allowed" => {
            "the route exists but not with this method; check the API reference (docs/api.md)"
        }
        "payload_too_large" => {
            "the body is over the route's limit; shrink the input or the component"
        }
        "unsupported_media_type" => {
            "install uploads must be multipart/form-data with `manifest` and `component` parts"
        }
        "unreadable_body" => "the body could not be read; try again",
        "invalid_json" => {
            "the input must be one JSON document; pass it inline, as @file.json or - for stdin"
        }
        "schema_violation" => {
            "the input breaks the operation's input schema; `GET /v1/connectors/<name>` shows it"
        }
        "invalid_header" | "invalid_tenant" | "invalid_context" => {
            "a context value (--tenant, --agent, --channel, --customer) is empty, too long or malformed"
        }
        "connector_not_found" => {
            "no connector of that name is installed; `switchboard install` one first"
        }
        "operation_not_found" => {
            "the connector has no such operation; the message lists those it has"
        }
        "invalid_manifest" => "fix connector.toml at the line and column given",
        "invalid_component" => {
            "the .wasm is not a component: build it for wasm32-wasip2 (`switchboard build`)"
        }
        "world_mismatch" => {
            "the component does not implement the connector world this host speaks; build it against wit/connector.wit with the matching SDK"
        }
        "describe_failed" => {
            "describe() failed or trapped while the host checked the package; run the connector's tests"
        }
        "describe_mismatch" => {
            "describe() must report the manifest's name and version, and each operation once"
        }
        "invalid_schema" => "an operation's published input or output schema is not a JSON Schema",
        "missing_part" | "unexpected_part" | "invalid_multipart" => {
            "the upload's parts are wrong: send `manifest`, `component` and optionally `signature`"
        }
        "invalid_setting_key" => "setting keys are snake_case",
        "undeclared_setting" => {
            "declare the key in the manifest's capabilities.config or capabilities.secrets"
        }
        "deadline_exceeded" => {
            "the call ran past its deadline; raise limits.deadline_ms or look at the upstream's latency"
        }
        "memory_limit_exceeded" => {
            "the instance wanted more memory than limits.memory_bytes allows"
        }
        "table_limit_exceeded" => {
            "the instance wanted more table elements than limits.table_elements allows"
        }
        "instance_limit_exceeded" => {
            "the component needs more core instances than limits.instances allows"
        }
        "connector_trapped" => {
            "the connector crashed (panic, unreachable, stack overflow); the host log has the trap"
        }
        "output_too_large" => "the output is over limits.output_bytes",
        "invalid_output" => "the connector returned something that is not JSON",
        "capacity_exhausted" => "every instance slot of the host is busy; retry shortly",
        "version_unloaded" => "the version was replaced while the call ran; retry",
        "rate_limited" => "a rate limit applies; retry after the time Retry-After gives",
        "overloaded" => "the connector is at its max_concurrency; retry shortly",
        "circuit_open" => {
            "the connector's breaker is open after repeated failures; retry after Retry-After"
        }
        "invalid_idempotency_key" => "an idempotency key is 1-255 printable ASCII characters",
        "idempotency_key_reused" => {
            "this idempotency key was used with another input; use a fresh key"
        }
        "idempotency_key_in_progress" => {
            "a call with this idempotency key is still running; retry shortly"
        }
        "invalid_batch" => "a batch holds 1 to 100 calls",
        "invalid_pipeline" => {
            "the pipeline settings are out of range or name an operation the connector lacks"
        }
        "invalid_query" => "a query parameter is malformed",
        "version_not_found" => {
            "that version is not installed; `switchboard ctl versions <name>` lists them"
        }
        "version_conflict" => {
            "this name and version are installed with a different package: bump `version` in Cargo.toml and connector.toml"
        }
        "version_in_use" => "the version is active or the canary; activate another version first",
        "no_previous_version" => "there is no previous version to roll back to",
        "no_canary" => "no canary is running",
        "canary_tripped" => "the automatic rollback judged the candidate; it is being aborted",
        "invalid_version" => "versions are semantic versions such as 1.2.3",
        "invalid_canary" => {
            "a canary needs another version than the active one and a weight from 0 to 100"
        }
        "signature_required" => {
            "this host requires signed packages: `switchboard sign --secret-key-file <key> <dir>`"
        }
        "signature_invalid" => {
            "the signature does not verify against a key the host trusts: re-sign after the last change, with a trusted key"
        }
        "signature_malformed" => {
            "connector.sig must hold `ed25519:<base64>` lines as `switchboard sign` writes them"
        }
        "hook_not_found" => "the connector's active version declares no such hook in [hooks]",
        "ip_not_allowed" => "the caller's address is outside the hook's allowlist",
        "signature_missing" | "unauthorized" | "secret_invalid" => {
            "the connector found the webhook not authentic"
        }
        "invalid_event" => "the event's kind, id, subject or data is invalid",
        "invalid_rule" | "invalid_subscription" | "invalid_hook_settings" => {
            "the message says which field is wrong"
        }
        "invalid_replay" => "a replay names one event or a range",
        "rule_not_found" | "subscription_not_found" | "event_not_found" | "delivery_not_found" => {
            "nothing with that id; list them first"
        }
        "hook_settings_not_found" => "the hook has no operator settings to remove",
        "delivery_not_dead" => {
            "only deliveries in the dead-letter queue can be retried or discarded"
        }
        "storage_unavailable" => "the host's store failed; see the host log",
        "not_ready" => "the host is still starting; retry in a moment",
        "unauthenticated" => {
            "pass an API key with --key or SWITCHBOARD_KEY; the host printed an admin key at its first start"
        }
        "token_expired" => "ask /oauth/token for a new token",
        "scope_required" => "use a key with the scope the route needs (read, invoke or admin)",
        "tenant_forbidden" => {
            "this key is bound to one tenant; use a host-wide key for other tenants and host-wide routes"
        }
        "invalid_key_request" => {
            "a key needs a name, scopes from read, invoke and admin, and a valid tenant"
        }
        "key_not_found" => "no key with that id is visible to you; GET /v1/keys lists them",
        "master_key_from_environment" => {
            "set SWITCHBOARD_MASTER_KEY to a new key, the old one in SWITCHBOARD_MASTER_KEY_PREVIOUS, and restart"
        }
        "internal" => "a host bug: report it with the request id",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code in the API reference's error table.
    fn documented_codes() -> Vec<String> {
        let api = include_str!("../../../docs/api.md");
        let table = api
            .split("## Errors")
            .nth(1)
            .expect("docs/api.md has an Errors section");
        table
            .lines()
            .take_while(|line| !line.starts_with("## "))
            .filter_map(|line| line.strip_prefix("| `"))
            .flat_map(|row| {
                let codes = row.split(" |").next().unwrap_or_default();
                codes
                    .split(" / ")
                    .map(|code| code.trim_matches('`').to_owned())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn every_documented_error_code_has_a_hint() {
        let codes = documented_codes();
        assert!(codes.len() > 60, "{codes:?}");
        let unexplained: Vec<_> = codes
            .iter()
            .filter(|code| explain(code).is_none())
            .collect();
        assert!(unexplained.is_empty(), "no hint for {unexplained:?}");
    }

    #[test]
    fn a_connectors_own_code_has_no_host_hint() {
        assert_eq!(explain("tracking_not_found"), None);
    }
}
