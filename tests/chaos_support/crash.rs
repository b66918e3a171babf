//! An operator crash in the middle of a reconcile: the future is dropped
//! after a given number of polls, wherever it stands (between two array
//! calls, between a call and its record, in the middle of a request).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Polls `inner` at most `polls` times; on the next poll it drops it
/// unfinished and yields `None` (the operator died).
pub struct CrashAfter<F> {
    inner: Option<Pin<Box<F>>>,
    polls_left: u32,
}

impl<F: Future> CrashAfter<F> {
    /// Crashes after `polls` polls; `None` never crashes.
    pub fn new(inner: F, polls: Option<u32>) -> Self {
        CrashAfter {
            inner: Some(Box::pin(inner)),
            polls_left: polls.unwrap_or(u32::MAX),
        }
    }
}

impl<F: Future> Future for CrashAfter<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.polls_left == 0 {
            // Dropping the future is the crash: whatever it held is lost.
            self.inner = None;
            return Poll::Ready(None);
        }
        self.polls_left -= 1;
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match inner.as_mut().poll(cx) {
            Poll::Ready(v) => {
                self.inner = None;
                Poll::Ready(Some(v))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
