//! The edge between the generated WIT bindings and the SDK's own types: the
//! conversions both ways, and the exports that dispatch to a [`Connector`].

use std::marker::PhantomData;

use crate::bindings::switchboard::connector::types as wit;
use crate::{Connector, Context, Error, Event, http, operation};

/// The component's exports for the connector `C`.
pub struct Exports<C>(PhantomData<C>);

impl<C: Connector> crate::bindings::Guest for Exports<C> {
    fn describe() -> wit::Info {
        let operations = C::operations()
            .iter()
            .map(|operation| {
                let (input_schema, output_schema) = operation.schemas();
                wit::Operation {
                    name: operation.name().to_owned(),
                    description: operation.description().to_owned(),
                    input_schema,
                    output_schema,
                    idempotent: operation.is_idempotent(),
                }
            })
            .collect();
        wit::Info {
            name: C::NAME.to_owned(),
            version: C::VERSION.to_owned(),
            description: C::DESCRIPTION.to_owned(),
            operations,
            emits: C::EMITS.iter().map(|kind| (*kind).to_owned()).collect(),
        }
    }

    fn invoke(
        ctx: wit::CallContext,
        operation: String,
        input: String,
    ) -> Result<String, wit::ConnectorError> {
        let ctx = Context::from(ctx);
        Ok(operation::dispatch(
            C::NAME,
            &C::operations(),
            &ctx,
            &operation,
            &input,
        )?)
    }

    fn handle_webhook(
        ctx: wit::CallContext,
        hook: String,
        request: wit::HttpRequest,
    ) -> Result<wit::WebhookOutcome, wit::ConnectorError> {
        let outcome = C::handle_webhook(&ctx.into(), &hook, request.into())?;
        Ok(wit::WebhookOutcome {
            response: outcome.response.into(),
            events: outcome.events.into_iter().map(Into::into).collect(),
        })
    }

    fn on_event(ctx: wit::CallContext, event: wit::Event) -> Result<(), wit::ConnectorError> {
        Ok(C::on_event(&ctx.into(), event.into())?)
    }
}

impl From<wit::CallContext> for Context {
    fn from(ctx: wit::CallContext) -> Self {
        Self {
            request_id: ctx.request_id,
            tenant: ctx.tenant,
            agent: ctx.agent,
            channel: ctx.channel,
            customer: ctx.customer,
            deadline_ms: ctx.deadline_ms,
        }
    }
}

impl From<Context> for wit::CallContext {
    fn from(ctx: Context) -> Self {
        Self {
            request_id: ctx.request_id,
            tenant: ctx.tenant,
            agent: ctx.agent,
            channel: ctx.channel,
            customer: ctx.customer,
            deadline_ms: ctx.deadline_ms,
        }
    }
}

impl From<wit::ConnectorError> for Error {
    fn from(error: wit::ConnectorError) -> Self {
        Self {
            code: error.code,
            message: error.message,
            retryable: error.retryable,
        }
    }
}

impl From<Error> for wit::ConnectorError {
    fn from(error: Error) -> Self {
        Self {
            code: error.code,
            message: error.message,
            retryable: error.retryable,
        }
    }
}

impl From<wit::Event> for Event {
    fn from(event: wit::Event) -> Self {
        Self {
            id: event.id,
            kind: event.kind,
            subject: event.subject,
            time_ms: event.time_ms,
            data: event.data,
        }
    }
}

impl From<Event> for wit::Event {
    fn from(event: Event) -> Self {
        Self {
            id: event.id,
            kind: event.kind,
            subject: event.subject,
            time_ms: event.time_ms,
            data: event.data,
        }
    }
}

impl From<wit::HttpRequest> for http::Request {
    fn from(request: wit::HttpRequest) -> Self {
        Self {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
        }
    }
}

impl From<http::Request> for wit::HttpRequest {
    fn from(request: http::Request) -> Self {
        Self {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
        }
    }
}

impl From<wit::HttpResponse> for http::Response {
    fn from(response: wit::HttpResponse) -> Self {
        Self {
            status: response.status,
            headers: response.headers,
            body: response.body,
        }
    }
}

impl From<http::Response> for wit::HttpResponse {
    fn from(response: http::Response) -> Self {
        Self {
            status: response.status,
            headers: response.headers,
            body: response.body,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::Operation;
    use crate::bindings::Guest;

    struct Fake;

    impl Connector for Fake {
        const NAME: &'static str = "fake";
        const VERSION: &'static str = "1.2.3";
        const DESCRIPTION: &'static str = "A connector for tests.";
        const EMITS: &'static [&'static str] = &["fake.happened"];

        fn operations() -> Vec<Operation> {
            vec![
                Operation::new("whoami", "Returns the call context.", whoami).idempotent(),
                Operation::new(
                    "fail",
                    "Fails.",
                    |_: &Context, _: Value| -> Result<(), Error> {
                        Err(Error::retryable("upstream_unavailable", "down"))
                    },
                ),
            ]
        }
    }

    fn whoami(ctx: &Context, _input: Value) -> Result<Value, Error> {
        Ok(serde_json::json!({
            "request_id": ctx.request_id,
            "tenant": ctx.tenant,
            "agent": ctx.agent,
            "deadline_ms": ctx.deadline_ms,
        }))
    }

    fn call_context() -> wit::CallContext {
        wit::CallContext {
            request_id: "req-1".into(),
            tenant: "acme".into(),
            agent: Some("8001".into()),
            channel: None,
            customer: None,
            deadline_ms: 250,
        }
    }

    #[test]
    fn describe_reports_identity_operations_schemas_and_emits() {
        let info = Exports::<Fake>::describe();
        assert_eq!(info.name, "fake");
        assert_eq!(info.version, "1.2.3");
        assert_eq!(info.description, "A connector for tests.");
        assert_eq!(info.emits, ["fake.happened"]);
        let names: Vec<_> = info.operations.iter().map(|op| op.name.as_str()).collect();
        assert_eq!(names, ["whoami", "fail"]);
        assert!(info.operations[0].idempotent);
        assert!(!info.operations[1].idempotent);
        let output: Value =
            serde_json::from_str(&info.operations[1].output_schema).expect("schema is JSON");
        assert_eq!(output["type"], "null");
    }

    #[test]
    fn invoke_hands_the_call_context_to_the_handler() {
        let output = Exports::<Fake>::invoke(call_context(), "whoami".into(), "{}".into())
            .expect("whoami succeeds");
        let output: Value = serde_json::from_str(&output).expect("output is JSON");
        assert_eq!(
            output,
            serde_json::json!({"request_id": "req-1", "tenant": "acme", "agent": "8001", "deadline_ms": 250})
        );
    }

    #[test]
    fn invoke_returns_errors_with_code_and_retryability() {
        let error = Exports::<Fake>::invoke(call_context(), "fail".into(), "1".into())
            .expect_err("fail fails");
        assert_eq!(error.code, "upstream_unavailable");
        assert!(error.retryable);

        let error = Exports::<Fake>::invoke(call_context(), "nope".into(), "{}".into())
            .expect_err("unknown operation");
        assert_eq!(error.code, "operation_not_found");
    }

    #[test]
    fn webhooks_are_refused_unless_the_connector_handles_them() {
        let request = http::Request::new("POST", "http://127.0.0.1/hook").into();
        let error = Exports::<Fake>::handle_webhook(call_context(), "calls".into(), request)
            .expect_err("no webhook support");
        assert_eq!(error.code, "webhook_not_supported");
    }
}
