//! The ticket system's memory: tickets with their comments, and the requesters they were
//! created for.
//!
//! This module owns creating, finding and updating tickets, all behind one lock so a change
//! and the status change it reports are one step; it takes the time as an argument.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::error::TicketError;
use super::request::{NewRequester, NewTicket, TicketUpdate};
use super::ticket::{AGENT_ID, Choice, Comment, Requester, Status, Ticket};

/// The first ticket id handed out.
const FIRST_TICKET_ID: u64 = 1;
/// The first user or comment id handed out; the agent's is just below.
const FIRST_RECORD_ID: u64 = AGENT_ID + 1;

/// Every ticket of the account.
#[derive(Debug)]
pub(crate) struct Tickets {
    inner: Mutex<Inner>,
}

impl Default for Tickets {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                tickets: BTreeMap::new(),
                requesters: Vec::new(),
                next_ticket_id: FIRST_TICKET_ID,
                next_record_id: FIRST_RECORD_ID,
            }),
        }
    }
}

#[derive(Debug)]
struct Inner {
    tickets: BTreeMap<u64, Stored>,
    /// Everyone a ticket was created for, so the same person keeps one user id.
    requesters: Vec<Requester>,
    next_ticket_id: u64,
    /// Users and comments share one sequence, as their ids never meet.
    next_record_id: u64,
}

#[derive(Debug)]
struct Stored {
    ticket: Ticket,
    comments: Vec<Comment>,
}

/// What an update did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Updated {
    /// The ticket as it is now.
    pub(crate) ticket: Ticket,
    /// The status it had before, when the update changed it.
    pub(crate) previous_status: Option<Status>,
}

impl Inner {
    fn next_record_id(&mut self) -> u64 {
        let id = self.next_record_id;
        self.next_record_id += 1;
        id
    }

    /// The requester's user id: the one already known by e-mail, phone or IM id, or a new one.
    fn requester(&mut self, new: NewRequester) -> Requester {
        let same = |known: &&Requester| {
            let matches = |a: &Option<String>, b: &Option<String>| {
                a.as_ref()
                    .zip(b.as_ref())
                    .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
            };
            matches(&known.email, &new.email)
                || matches(&known.phone, &new.phone)
                || matches(&known.im_id, &new.im_id)
        };
        let id = match self.requesters.iter().find(same) {
            Some(known) => known.id,
            None => self.next_record_id(),
        };
        let requester = Requester {
            id,
            name: new.name,
            email: new.email,
            phone: new.phone,
            im_id: new.im_id,
        };
        if !self.requesters.iter().any(|known| known.id == id) {
            self.requesters.push(requester.clone());
        }
        requester
    }
}

impl Tickets {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates a `new` ticket whose first comment, by the requester, is its description.
    /// External ids need not be unique, as in Zendesk.
    pub(crate) fn create(&self, new: NewTicket, now: &str) -> Ticket {
        let mut inner = self.lock();
        let id = inner.next_ticket_id;
        inner.next_ticket_id += 1;
        let requester = inner.requester(new.requester);
        let comment_id = inner.next_record_id();
        let comment = Comment::new(comment_id, new.description.clone(), true, requester.id, now);
        let ticket = Ticket {
            id,
            external_id: new.external_id,
            kind: new.kind,
            subject: new.subject,
            description: new.description,
            priority: new.priority,
            status: Status::New,
            requester_id: requester.id,
            requester,
            tags: new.tags,
            custom_fields: new.custom_fields,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        };
        inner.tickets.insert(
            id,
            Stored {
                ticket: ticket.clone(),
                comments: vec![comment],
            },
        );
        ticket
    }

    /// The ticket with `id`.
    pub(crate) fn get(&self, id: u64) -> Result<Ticket, TicketError> {
        self.lock()
            .tickets
            .get(&id)
            .map(|stored| stored.ticket.clone())
            .ok_or(TicketError::NotFound)
    }

    /// The comments of the ticket with `id`, oldest first.
    pub(crate) fn comments(&self, id: u64) -> Result<Vec<Comment>, TicketError> {
        self.lock()
            .tickets
            .get(&id)
            .map(|stored| stored.comments.clone())
            .ok_or(TicketError::NotFound)
    }

    /// Every ticket, or those whose external id is `external_id`, by id.
    pub(crate) fn list(&self, external_id: Option<&str>) -> Vec<Ticket> {
        self.lock()
            .tickets
            .values()
            .map(|stored| &stored.ticket)
            .filter(|ticket| external_id.is_none_or(|id| ticket.external_id.as_deref() == Some(id)))
            .cloned()
            .collect()
    }

    /// Applies `update` to the ticket with `id`, all or nothing. A closed ticket takes no
    /// update, a ticket that left `new` cannot go back, and a comment's author must be the
    /// agent or the ticket's requester (whose comments are always public).
    pub(crate) fn update(
        &self,
        id: u64,
        update: TicketUpdate,
        now: &str,
    ) -> Result<Updated, TicketError> {
        let mut inner = self.lock();
        let current = inner
            .tickets
            .get(&id)
            .map(|stored| &stored.ticket)
            .ok_or(TicketError::NotFound)?;
        check_update(current, &update)?;
        let comment_id = update.comment.is_some().then(|| inner.next_record_id());
        let stored = inner.tickets.get_mut(&id).ok_or(TicketError::NotFound)?;
        let ticket = &mut stored.ticket;
        let previous = ticket.status;
        if let Some(status) = update.status {
            ticket.status = status;
        }
        if let Some(priority) = update.priority {
            ticket.priority = Some(priority);
        }
        if let Some(tags) = update.tags {
            ticket.tags = tags;
        }
        if let (Some(comment), Some(comment_id)) = (update.comment, comment_id) {
            let author_id = comment.author_id.unwrap_or(AGENT_ID);
            let public = comment.public || author_id == ticket.requester_id;
            stored.comments.push(Comment::new(
                comment_id,
                comment.body,
                public,
                author_id,
                now,
            ));
        }
        stored.ticket.updated_at = now.to_owned();
        Ok(Updated {
            ticket: stored.ticket.clone(),
            previous_status: (stored.ticket.status != previous).then_some(previous),
        })
    }
}

fn check_update(ticket: &Ticket, update: &TicketUpdate) -> Result<(), TicketError> {
    if ticket.status == Status::Closed {
        return Err(TicketError::invalid(
            "status",
            "Status: closed prevents ticket update",
        ));
    }
    if update.status == Some(Status::New) && ticket.status != Status::New {
        return Err(TicketError::invalid(
            "status",
            format!(
                "Status: new is not valid for a ticket that is {}",
                ticket.status.as_str()
            ),
        ));
    }
    let author = update
        .comment
        .as_ref()
        .and_then(|comment| comment.author_id);
    if let Some(author) = author
        && author != AGENT_ID
        && author != ticket.requester_id
    {
        return Err(TicketError::invalid(
            "comment",
            format!(
                "Comment: author {author} is neither the agent ({AGENT_ID}) nor the requester ({})",
                ticket.requester_id
            ),
        ));
    }
    Ok(())
}
