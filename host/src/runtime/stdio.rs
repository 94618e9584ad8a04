//! Guest stdout and stderr, captured line by line into the connector log.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::capabilities::CallCapabilities;
use crate::capabilities::log::{self, Level, MAX_LINE_BYTES, Source};
use crate::registry::MAX_SETTING_BYTES;

/// Longest unterminated output buffered before it is logged as a line: the
/// kept part of a line plus the longest possible secret, so any secret that
/// starts in the kept part is redacted whole.
const MAX_PENDING_BYTES: usize = MAX_LINE_BYTES + MAX_SETTING_BYTES;

/// A guest output stream (stdout or stderr) that writes into the log.
#[derive(Clone)]
pub struct GuestOutput {
    caps: Arc<CallCapabilities>,
    source: Source,
}

impl GuestOutput {
    /// The guest's standard output for one call.
    pub fn stdout(caps: Arc<CallCapabilities>) -> Self {
        Self {
            caps,
            source: Source::Stdout,
        }
    }

    /// The guest's standard error for one call.
    pub fn stderr(caps: Arc<CallCapabilities>) -> Self {
        Self {
            caps,
            source: Source::Stderr,
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineWriter::new(self.clone()))
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter::new(self.clone()))
    }
}

/// Buffers bytes until a newline (or [`MAX_PENDING_BYTES`]) and logs each line.
struct LineWriter {
    output: GuestOutput,
    pending: Vec<u8>,
    /// Set after an over-long line was logged: drop bytes until its newline,
    /// since the log keeps only the start of a line anyway.
    discarding: bool,
}

impl LineWriter {
    fn new(output: GuestOutput) -> Self {
        Self {
            output,
            pending: Vec::new(),
            discarding: false,
        }
    }

    fn accept(&mut self, mut bytes: &[u8]) {
        while let Some(newline) = bytes.iter().position(|&b| b == b'\n') {
            if self.discarding {
                self.discarding = false;
            } else {
                self.pending.extend_from_slice(&bytes[..newline]);
                self.emit();
            }
            bytes = &bytes[newline + 1..];
        }
        if self.discarding {
            return;
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= MAX_PENDING_BYTES {
            self.emit();
            self.discarding = true;
        }
    }

    fn emit(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let line = String::from_utf8_lossy(&self.pending);
        let level = match self.output.source {
            Source::Stderr => Level::Warn,
            _ => Level::Info,
        };
        log::write(
            &self.output.caps,
            self.output.source,
            level,
            line.trim_end_matches('\r'),
        );
        self.pending.clear();
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.emit();
    }
}

#[async_trait::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.accept(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_LINE_BYTES)
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().accept(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_mut().emit();
        Poll::Ready(Ok(()))
    }
}
