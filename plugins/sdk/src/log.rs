//! Structured logging into the host's log, tagged with the connector and request.
//!
//! Never log secrets: the host masks phone, ID-card and bank-card numbers and
//! e-mail addresses, but it cannot recognize a secret.

use crate::host;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Diagnostics for developers.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that was handled.
    Warn,
    /// A failure.
    Error,
}

/// Very detailed tracing.
pub fn trace(message: impl AsRef<str>) {
    host::log(Level::Trace, message.as_ref());
}

/// Diagnostics for developers.
pub fn debug(message: impl AsRef<str>) {
    host::log(Level::Debug, message.as_ref());
}

/// Normal operation.
pub fn info(message: impl AsRef<str>) {
    host::log(Level::Info, message.as_ref());
}

/// Something unexpected that was handled.
pub fn warn(message: impl AsRef<str>) {
    host::log(Level::Warn, message.as_ref());
}

/// A failure.
pub fn error(message: impl AsRef<str>) {
    host::log(Level::Error, message.as_ref());
}
