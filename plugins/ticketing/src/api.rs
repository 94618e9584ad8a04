//! The ticket system's API as the connector calls it (Zendesk Support style): requests,
//! the provider's JSON, and its errors mapped to the connector's error codes.
//!
//! `Authorization: Bearer <api_token>` on every request; ticket ids are integers.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use switchboard_sdk::{Deserialize, Error, config, http};

use crate::fields::FieldMap;
use crate::model::{Author, CommentView, Requester, TicketId, TicketView};

/// The account's ticket API, as configured.
pub(crate) struct Client {
    base_url: String,
    token: String,
}

/// A ticket as the provider returns it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ProviderTicket {
    pub(crate) id: u64,
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) subject: Option<String>,
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) priority: Option<String>,
    #[serde(default, rename = "type")]
    pub(crate) kind: Option<String>,
    #[serde(default)]
    pub(crate) requester_id: Option<u64>,
    #[serde(default)]
    pub(crate) requester: Option<Requester>,
    #[serde(default)]
    pub(crate) tags: Vec<String>,
    #[serde(default)]
    pub(crate) custom_fields: Vec<ProviderCustomField>,
    #[serde(default)]
    pub(crate) external_id: Option<String>,
    #[serde(default)]
    pub(crate) created_at: Option<String>,
    #[serde(default)]
    pub(crate) updated_at: Option<String>,
}

/// One custom field value of a ticket.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ProviderCustomField {
    pub(crate) id: u64,
    #[serde(default)]
    pub(crate) value: Value,
}

/// A comment as the provider returns it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ProviderComment {
    id: u64,
    #[serde(default)]
    body: String,
    #[serde(default)]
    public: bool,
    author_id: u64,
    #[serde(default)]
    created_at: Option<String>,
}

#[derive(Deserialize)]
struct OneTicket {
    ticket: ProviderTicket,
}

#[derive(Deserialize)]
struct TicketList {
    tickets: Vec<ProviderTicket>,
}

#[derive(Deserialize)]
struct CommentList {
    comments: Vec<ProviderComment>,
}

/// The provider's error body: `{"error", "description", "details": {field: [{description}]}}`.
#[derive(Deserialize)]
struct ProviderError {
    #[serde(default)]
    error: Value,
    #[serde(default)]
    details: BTreeMap<String, Vec<ProviderDetail>>,
}

#[derive(Deserialize)]
struct ProviderDetail {
    #[serde(default)]
    description: String,
}

impl Client {
    /// The client for the configured `base_url` and `api_token`.
    pub(crate) fn from_config() -> Result<Self, Error> {
        Ok(Self {
            base_url: config::require("base_url")?
                .trim_end_matches('/')
                .to_owned(),
            token: config::require_secret("api_token")?,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v2/{path}", self.base_url)
    }

    /// `POST /api/v2/tickets` with `{"ticket": ticket}`.
    pub(crate) fn create(&self, ticket: &Value) -> Result<ProviderTicket, Error> {
        let response = http::post(self.url("tickets"))
            .bearer(&self.token)
            .json(&json!({ "ticket": ticket }))?
            .send()?;
        Ok(expect_success(response, None)?.json::<OneTicket>()?.ticket)
    }

    /// `GET /api/v2/tickets/{id}`.
    pub(crate) fn get(&self, id: TicketId) -> Result<ProviderTicket, Error> {
        let response = http::get(self.url(&format!("tickets/{id}")))
            .bearer(&self.token)
            .send()?;
        Ok(expect_success(response, Some(id))?
            .json::<OneTicket>()?
            .ticket)
    }

    /// `GET /api/v2/tickets?external_id=…`: every ticket with that external id, by id.
    pub(crate) fn find_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Vec<ProviderTicket>, Error> {
        let url = format!(
            "{}?external_id={}",
            self.url("tickets"),
            encode_query(external_id)
        );
        let response = http::get(url).bearer(&self.token).send()?;
        let mut tickets = expect_success(response, None)?
            .json::<TicketList>()?
            .tickets;
        tickets.sort_by_key(|ticket| ticket.id);
        Ok(tickets)
    }

    /// `PUT /api/v2/tickets/{id}` with `{"ticket": changes}`.
    pub(crate) fn update(&self, id: TicketId, changes: &Value) -> Result<ProviderTicket, Error> {
        let response = http::Request::new("PUT", self.url(&format!("tickets/{id}")))
            .bearer(&self.token)
            .json(&json!({ "ticket": changes }))?
            .send()?;
        Ok(expect_success(response, Some(id))?
            .json::<OneTicket>()?
            .ticket)
    }

    /// `GET /api/v2/tickets/{id}/comments`, oldest first.
    pub(crate) fn comments(&self, id: TicketId) -> Result<Vec<ProviderComment>, Error> {
        let response = http::get(self.url(&format!("tickets/{id}/comments")))
            .bearer(&self.token)
            .send()?;
        Ok(expect_success(response, Some(id))?
            .json::<CommentList>()?
            .comments)
    }
}

impl ProviderTicket {
    /// The ticket as the connector reports it, custom fields named through `fields`.
    pub(crate) fn view(self, fields: &FieldMap) -> TicketView {
        TicketView {
            ticket_id: self.id.to_string(),
            status: self.status,
            subject: self.subject.unwrap_or_default(),
            description: self.description.unwrap_or_default(),
            priority: self.priority,
            ticket_type: self.kind,
            requester: self.requester,
            tags: self.tags,
            fields: fields.named(&self.custom_fields),
            external_id: self.external_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl ProviderComment {
    /// The comment as the connector reports it; `requester_id` tells who the customer is.
    pub(crate) fn view(self, requester_id: Option<u64>) -> CommentView {
        CommentView {
            comment_id: self.id.to_string(),
            body: self.body,
            public: self.public,
            author: if Some(self.author_id) == requester_id {
                Author::Requester
            } else {
                Author::Agent
            },
            author_id: self.author_id.to_string(),
            created_at: self.created_at,
        }
    }
}

/// The response if it is a success, else the provider's failure as a connector error;
/// `ticket` is the ticket the request named, if any.
fn expect_success(
    response: http::Response,
    ticket: Option<TicketId>,
) -> Result<http::Response, Error> {
    if response.is_success() {
        return Ok(response);
    }
    let body = response.json::<ProviderError>().ok();
    let record_not_found = body
        .as_ref()
        .is_some_and(|body| body.error == "RecordNotFound");
    Err(match (response.status, ticket, body) {
        (401, _, _) => Error::new(
            "authentication_failed",
            "the ticket system refused the API token (HTTP 401); check the `api_token` secret",
        ),
        (404, Some(id), _) if record_not_found => ticket_not_found(id),
        (422, ticket, Some(body)) => invalid(ticket, &body.details),
        (status, _, _) => Error::upstream_status(status, &response.body),
    })
}

/// `ticket_not_found` for `id`.
pub(crate) fn ticket_not_found(id: TicketId) -> Error {
    Error::new(
        "ticket_not_found",
        format!("the ticket system has no ticket {id}"),
    )
}

/// `ticket_closed` when the provider refused to touch a closed ticket, else
/// `ticket_invalid` listing every field at fault.
fn invalid(ticket: Option<TicketId>, details: &BTreeMap<String, Vec<ProviderDetail>>) -> Error {
    let closed = details.get("status").is_some_and(|list| {
        list.iter()
            .any(|d| d.description.contains("closed prevents"))
    });
    if let (true, Some(id)) = (closed, ticket) {
        return Error::new(
            "ticket_closed",
            format!("ticket {id} is closed and takes no more updates; open a follow-up ticket"),
        );
    }
    let listed: Vec<String> = details
        .iter()
        .flat_map(|(field, list)| {
            list.iter()
                .map(move |detail| format!("{field}: {}", detail.description))
        })
        .collect();
    let listed = if listed.is_empty() {
        "no details given".to_owned()
    } else {
        listed.join("; ")
    };
    Error::new(
        "ticket_invalid",
        format!("the ticket system refused the ticket: {listed}"),
    )
}

/// `value` percent-encoded for a query string.
fn encode_query(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}
