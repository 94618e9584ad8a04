//! `get-ticket`, `update-ticket` and `add-comment`: reading and changing an existing ticket.
//!
//! Status changes made here come back through the provider's webhook as
//! `ticket.status_changed`, like those agents make in the ticket UI, so nothing is emitted
//! here and subscribers see each change once.

use serde_json::{Map, Value, json};
use switchboard_sdk::{Context, Error};

use crate::api::Client;
use crate::fields::FieldMap;
use crate::model::{
    AddCommentInput, Author, GetTicketInput, TicketView, TicketWithComments, UpdateTicketInput,
};
use crate::render;

/// The ticket with its comments.
pub(crate) fn get_ticket(
    _ctx: &Context,
    input: GetTicketInput,
) -> Result<TicketWithComments, Error> {
    let client = Client::from_config()?;
    let fields = FieldMap::from_config()?;
    let ticket = client.get(input.ticket_id)?;
    let requester_id = ticket.requester_id;
    let comments = client
        .comments(input.ticket_id)?
        .into_iter()
        .map(|comment| comment.view(requester_id))
        .collect();
    Ok(TicketWithComments {
        ticket: ticket.view(&fields),
        comments,
    })
}

/// Changes status, priority or tags, and adds a comment by the agent.
pub(crate) fn update_ticket(_ctx: &Context, input: UpdateTicketInput) -> Result<TicketView, Error> {
    let mut changes = Map::new();
    if let Some(status) = input.status {
        changes.insert("status".into(), json!(status));
    }
    if let Some(priority) = input.priority {
        changes.insert("priority".into(), json!(priority));
    }
    if let Some(tags) = &input.tags {
        changes.insert("tags".into(), json!(tags));
    }
    if let Some(body) = input.comment.as_deref() {
        not_blank("comment", body)?;
        changes.insert(
            "comment".into(),
            json!({ "body": body, "public": input.public }),
        );
    }
    if changes.is_empty() {
        return Err(Error::invalid_input(
            "nothing to update: give `status`, `priority`, `tags` or `comment`",
        ));
    }
    let client = Client::from_config()?;
    let fields = FieldMap::from_config()?;
    Ok(client
        .update(input.ticket_id, &Value::Object(changes))?
        .view(&fields))
}

/// Adds a comment by the agent, or by the requester (a customer's follow-up message).
pub(crate) fn add_comment(_ctx: &Context, input: AddCommentInput) -> Result<TicketView, Error> {
    not_blank("body", &input.body)?;
    let client = Client::from_config()?;
    let fields = FieldMap::from_config()?;
    let body = render::comment(&input.body, &input.attachments);
    let comment = match input.author {
        Author::Agent => json!({ "body": body, "public": input.public }),
        Author::Requester => {
            let requester_id = client.get(input.ticket_id)?.requester_id.ok_or_else(|| {
                Error::new(
                    "upstream_invalid_response",
                    format!("ticket {} names no requester", input.ticket_id),
                )
            })?;
            json!({ "body": body, "public": true, "author_id": requester_id })
        }
    };
    Ok(client
        .update(input.ticket_id, &json!({ "comment": comment }))?
        .view(&fields))
}

/// `value` unchanged, or `invalid_input` if it is empty or only whitespace.
fn not_blank(field: &str, value: &str) -> Result<(), Error> {
    if value.trim().is_empty() {
        return Err(Error::invalid_input(format!("`{field}` must not be blank")));
    }
    Ok(())
}
