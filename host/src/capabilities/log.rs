//! `log`: connector log lines into the host's `tracing` output.
//!
//! Each line is tagged with the connector, version and request id, scrubbed of
//! the connector's secrets, its personal data masked ([`crate::masking`]),
//! then cut to [`MAX_LINE_BYTES`], and counted against the
//! call's line budget so a chatty connector cannot flood the log. Captured
//! guest stdout and stderr go through the same path.

use super::CallCapabilities;
use crate::registry::MAX_SETTING_BYTES;

/// Longest line kept, in bytes; the rest is cut.
pub const MAX_LINE_BYTES: usize = 8 << 10;

/// Severity of a connector log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Very detailed.
    Trace,
    /// For developers.
    Debug,
    /// Normal operation.
    Info,
    /// Handled surprise.
    Warn,
    /// Failure.
    Error,
}

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The `log` import.
    Log,
    /// The guest's standard output.
    Stdout,
    /// The guest's standard error.
    Stderr,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Log => "log",
            Source::Stdout => "stdout",
            Source::Stderr => "stderr",
        }
    }
}

/// `message` cut to at most `max` bytes on a character boundary.
fn cut(message: &str, max: usize) -> &str {
    if message.len() <= max {
        return message;
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

/// Writes one connector log line, if the call's budget allows.
pub fn write(caps: &CallCapabilities, source: Source, level: Level, message: &str) {
    if !caps.take_log_line() {
        return;
    }
    // Redact before cutting, so a cut never leaves part of a secret behind; a
    // secret that starts in the kept part ends within the window, since no
    // secret is longer than MAX_SETTING_BYTES.
    let window = cut(message, MAX_LINE_BYTES + MAX_SETTING_BYTES);
    let redacted = caps.grants.settings.redact(window);
    let masked = crate::masking::mask(&redacted);
    let message = cut(&masked, MAX_LINE_BYTES);
    let connector = caps.grants.name.as_str();
    let version = &caps.grants.version;
    let request_id = caps.context.request_id.as_str();
    let source = source.as_str();
    macro_rules! emit {
        ($level:expr) => {
            tracing::event!(target: "connector", $level, connector, %version, request_id, source, "{message}")
        };
    }
    match level {
        Level::Trace => emit!(tracing::Level::TRACE),
        Level::Debug => emit!(tracing::Level::DEBUG),
        Level::Info => emit!(tracing::Level::INFO),
        Level::Warn => emit!(tracing::Level::WARN),
        Level::Error => emit!(tracing::Level::ERROR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        let line = "é".repeat(MAX_LINE_BYTES);
        let kept = cut(&line, MAX_LINE_BYTES);
        assert!(kept.len() <= MAX_LINE_BYTES);
        assert!(kept.len() >= MAX_LINE_BYTES - 1);
    }
}
