//! How a ticket's description and comments are written: the caller's text, then the
//! attachments (media by URL), then the IM conversation the ticket came from.
//!
//! ```text
//! The parcel arrived broken.
//!
//! Attachments:
//! - photo.jpg: https://files.example.com/1.jpg
//!
//! Conversation:
//! [2024-05-01T08:30:00Z] Li Lei: My parcel is broken
//!   (media: https://files.example.com/1.jpg)
//! Agent Wang: Sorry to hear that
//! ```

use std::fmt::Write as _;

use crate::model::{Attachment, ContextMessage, MessageTime};

/// The description of a new ticket.
pub(crate) fn description(
    text: &str,
    attachments: &[Attachment],
    context: &[ContextMessage],
) -> String {
    let mut out = comment(text, attachments);
    if !context.is_empty() {
        out.push_str("\n\nConversation:");
        for message in context {
            conversation_line(&mut out, message);
        }
    }
    out
}

/// A comment's body: `text`, then its attachments if any.
pub(crate) fn comment(text: &str, attachments: &[Attachment]) -> String {
    let mut out = text.trim_end().to_owned();
    if !attachments.is_empty() {
        out.push_str("\n\nAttachments:");
        for attachment in attachments {
            match attachment
                .name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
            {
                Some(name) => {
                    let _ = write!(out, "\n- {name}: {}", attachment.url);
                }
                None => {
                    let _ = write!(out, "\n- {}", attachment.url);
                }
            }
        }
    }
    out
}

/// `[time] from: text`, continuation lines indented by two spaces, then the media URL.
fn conversation_line(out: &mut String, message: &ContextMessage) {
    out.push('\n');
    if let Some(time) = message
        .time
        .as_ref()
        .map(MessageTime::shown)
        .filter(|t| !t.is_empty())
    {
        let _ = write!(out, "[{time}] ");
    }
    let _ = write!(out, "{}:", message.from.trim());
    let mut lines = message.text.trim().lines();
    if let Some(first) = lines.next() {
        let _ = write!(out, " {first}");
    }
    for line in lines {
        let _ = write!(out, "\n  {line}");
    }
    if let Some(url) = &message.media_url {
        let _ = write!(out, "\n  (media: {url})");
    }
}
