//! `create-ticket`: opens a ticket once per external id, however often and however
//! concurrently it is asked.
//!
//! With an external id (given, or `sb-request:<request id>` derived from the call so the
//! host's retries of one call stay one ticket): the ticket remembered in KV under
//! `ticket:<external id>` is returned if it still exists; otherwise the call takes the lease
//! `create:<external id>` (`kv::set_if_absent`, 30 s), looks the external id up at the
//! provider, and creates the ticket only if none has it. A call that finds the lease taken
//! returns the ticket if the provider already has it, else the retryable
//! `ticket_creation_in_progress`. `ticket.created` is emitted only by the call that created.

use std::time::Duration;

use serde_json::{Map, Value, json};
use switchboard_sdk::{Context, Error, events, kv};

use crate::api::{Client, ProviderTicket};
use crate::fields::FieldMap;
use crate::model::{CreateTicketInput, CreateTicketOutput, TicketId};
use crate::render;

/// The event emitted when a call creates a ticket.
pub(crate) const TICKET_CREATED: &str = "ticket.created";
/// How long a create lease lives: longer than any one call may take.
const LEASE_TTL: Duration = Duration::from_secs(30);
/// The longest request id an external id is derived from.
const MAX_REQUEST_ID_CHARS: usize = 64;

/// What `create-ticket` works with once its input has been read.
struct Creation<'a> {
    client: Client,
    fields: FieldMap,
    /// The provider's `ticket` object.
    ticket: Value,
    external_id: Option<&'a str>,
}

/// Opens the ticket described by `input`, or returns the one its external id already has.
pub(crate) fn create_ticket(
    ctx: &Context,
    input: CreateTicketInput,
) -> Result<CreateTicketOutput, Error> {
    let derived = derived_external_id(ctx);
    let external_id = input
        .external_id
        .as_deref()
        .map(checked_external_id)
        .transpose()?
        .or(derived.as_deref());
    let fields = FieldMap::from_config()?;
    let ticket = provider_ticket(&input, &fields, external_id)?;
    let creation = Creation {
        client: Client::from_config()?,
        fields,
        ticket,
        external_id,
    };
    match creation.external_id {
        None => creation.create(),
        Some(external_id) => creation.create_once(external_id, &ctx.request_id),
    }
}

impl Creation<'_> {
    /// Creates the ticket, emits `ticket.created` and remembers it.
    fn create(&self) -> Result<CreateTicketOutput, Error> {
        let ticket = self.client.create(&self.ticket)?;
        let id = ticket.id;
        let view = ticket.view(&self.fields);
        events::emit(TICKET_CREATED, Some(&view.ticket_id), &view)?;
        if let Some(external_id) = self.external_id {
            kv::set_json(&ticket_key(external_id), &id, None)?;
        }
        Ok(CreateTicketOutput {
            ticket: view,
            created: true,
        })
    }

    /// The external id's ticket, created if it has none.
    fn create_once(
        &self,
        external_id: &str,
        request_id: &str,
    ) -> Result<CreateTicketOutput, Error> {
        if let Some(ticket) = self.remembered(external_id)? {
            return Ok(self.existing(ticket));
        }
        let lease = lease_key(external_id);
        if !kv::set_if_absent(&lease, request_id.as_bytes(), Some(LEASE_TTL))? {
            return match self.found(external_id)? {
                Some(ticket) => Ok(self.existing(ticket)),
                None => Err(Error::retryable(
                    "ticket_creation_in_progress",
                    format!(
                        "another call is creating the ticket for external id `{external_id}`; try again shortly"
                    ),
                )),
            };
        }
        let outcome = match self.found(external_id) {
            Ok(Some(ticket)) => Ok(self.existing(ticket)),
            Ok(None) => self.create(),
            Err(error) => Err(error),
        };
        // The lease expires by itself; failing to release it early only delays a retry.
        let _ = kv::delete(&lease);
        outcome
    }

    /// The ticket remembered for the external id, if it still exists.
    fn remembered(&self, external_id: &str) -> Result<Option<ProviderTicket>, Error> {
        let Some(id) = kv::get_json::<u64>(&ticket_key(external_id))? else {
            return Ok(None);
        };
        match self.client.get(TicketId(id)) {
            Ok(ticket) => Ok(Some(ticket)),
            Err(error) if error.code == "ticket_not_found" => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The provider's first ticket with the external id, remembered for next time.
    fn found(&self, external_id: &str) -> Result<Option<ProviderTicket>, Error> {
        let Some(ticket) = self
            .client
            .find_by_external_id(external_id)?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        kv::set_json(&ticket_key(external_id), &ticket.id, None)?;
        Ok(Some(ticket))
    }

    fn existing(&self, ticket: ProviderTicket) -> CreateTicketOutput {
        CreateTicketOutput {
            ticket: ticket.view(&self.fields),
            created: false,
        }
    }
}

/// The provider's `ticket` object for `input`.
fn provider_ticket(
    input: &CreateTicketInput,
    fields: &FieldMap,
    external_id: Option<&str>,
) -> Result<Value, Error> {
    let description = render::description(&input.description, &input.attachments, &input.context);
    let mut ticket = Map::new();
    ticket.insert("subject".into(), json!(input.subject));
    ticket.insert("comment".into(), json!({ "body": description }));
    ticket.insert("requester".into(), json!(input.requester));
    if let Some(priority) = input.priority {
        ticket.insert("priority".into(), json!(priority));
    }
    if let Some(kind) = input.ticket_type {
        ticket.insert("type".into(), json!(kind));
    }
    if !input.tags.is_empty() {
        ticket.insert("tags".into(), json!(input.tags));
    }
    if !input.fields.is_empty() {
        ticket.insert(
            "custom_fields".into(),
            Value::Array(fields.to_provider(&input.fields)?),
        );
    }
    if let Some(external_id) = external_id {
        ticket.insert("external_id".into(), json!(external_id));
    }
    Ok(Value::Object(ticket))
}

/// `sb-request:<request id>` when the call has a usable request id.
fn derived_external_id(ctx: &Context) -> Option<String> {
    let request_id = ctx.request_id.trim();
    (!request_id.is_empty()
        && request_id.chars().count() <= MAX_REQUEST_ID_CHARS
        && !request_id.contains('\0'))
    .then(|| format!("sb-request:{request_id}"))
}

/// A given external id: not blank, no NUL (it becomes part of KV keys).
fn checked_external_id(id: &str) -> Result<&str, Error> {
    if id.trim().is_empty() || id.contains('\0') {
        return Err(Error::invalid_input(
            "`external_id` must not be blank or contain NUL characters",
        ));
    }
    Ok(id)
}

fn ticket_key(external_id: &str) -> String {
    format!("ticket:{external_id}")
}

fn lease_key(external_id: &str) -> String {
    format!("create:{external_id}")
}
