//! Every log line the operator writes, captured for the "no secret in any
//! log line" check.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// A log sink shared by the subscriber and the test.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Captures every event at TRACE, from every crate, on this thread
    /// until the guard is dropped.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// Takes what was captured so far, leaving the sink empty.
    pub fn take(&self) -> String {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The lines that contain any of `secrets`.
    pub fn leaks(text: &str, secrets: &[&str]) -> Vec<String> {
        text.lines()
            .filter(|l| secrets.iter().any(|s| l.contains(s)))
            .map(str::to_string)
            .collect()
    }
}
