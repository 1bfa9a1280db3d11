//! The API call being handled, as the event spine sees it: the channel it was made through,
//! and whether its first change has been counted for channel analytics.
//!
//! [`middleware`] opens a scope around every authenticated call and reads the channel the
//! caller states in the `X-Omni-Channel` header; a handler whose body names a `channel` states
//! that one instead ([`state`]), so the body wins. `events::record` reads the scope: a change
//! is recorded with the stated channel, and the first change of a call counts as one
//! transaction. Changes made outside any call (the background sweeps) are not transactions.

use std::cell::Cell;
use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::actor::{Actor, ProvenActor};
use crate::channel::Channel;
use crate::error::{ApiError, FieldError};

pub const HEADER: &str = "x-omni-channel";

tokio::task_local! {
    static CALL: Call;
}

#[derive(Debug)]
struct Call {
    stated: Cell<Option<Channel>>,
    /// Whether the call has recorded a change, and the channel that change was made through.
    counted: Cell<bool>,
    resolved: Cell<Option<Channel>>,
    /// What to run once the call has answered (its transaction is over by then): the wakers
    /// of workers whose work the call committed.
    after: std::cell::RefCell<Vec<fn()>>,
    /// The person the call's actor token proves, if it carries one.
    actor: Option<Arc<ProvenActor>>,
    /// The API key that made the call, by id; `None` for a session token or the console.
    key_id: Option<String>,
}

/// The API key a call is made with, by id: `auth` puts it on the request it authenticated.
#[derive(Debug, Clone)]
pub struct CallKey(pub String);

/// Runs the call in its scope; an `X-Omni-Channel` that names no channel is 422.
pub async fn middleware(req: Request, next: Next) -> Response {
    let stated = match req.headers().get(HEADER) {
        None => None,
        Some(value) => match value.to_str().ok().map(str::parse::<Channel>) {
            Some(Ok(channel)) => Some(channel),
            Some(Err(message)) => return invalid(message).into_response(),
            None => return invalid("must be ASCII".into()).into_response(),
        },
    };
    let actor = req.extensions().get::<Actor>().and_then(|a| a.0.clone());
    let key_id = req.extensions().get::<CallKey>().map(|k| k.0.clone());
    within(stated, actor, key_id, next.run(req)).await
}

/// Runs `work` as one API call made through `stated` (if it states a channel), by `actor` (if
/// a token proved one), with the API key `key_id` (if a key made it).
pub async fn within<F: Future>(
    stated: Option<Channel>,
    actor: Option<Arc<ProvenActor>>,
    key_id: Option<String>,
    work: F,
) -> F::Output {
    let call = Call {
        stated: Cell::new(stated),
        counted: Cell::new(false),
        resolved: Cell::new(None),
        after: std::cell::RefCell::default(),
        actor,
        key_id,
    };
    // Its answer waits for any change of another call it may have seen uncommitted.
    let (output, after) = crate::store::settled(CALL.scope(call, async {
        let output = work.await;
        (output, CALL.with(|c| c.after.take()))
    }))
    .await;
    // The call's transaction has committed (or rolled back) by the time it answers.
    for wake in after {
        wake();
    }
    output
}

/// Runs `wake` once the call has answered (once, however often it is asked for): for a
/// reaction that wrote work a worker of this process should find at once. Outside a call it
/// does nothing; the worker's polling finds the work.
pub fn after_answer(wake: fn()) {
    let _ = CALL.try_with(|call| {
        let mut after = call.after.borrow_mut();
        if !after.contains(&wake) {
            after.push(wake);
        }
    });
}

fn invalid(message: String) -> ApiError {
    ApiError::validation(vec![FieldError::new("X-Omni-Channel", message)])
}

/// The proof to record with a change made by `actor_id`: the call's proven person's, when that
/// is who the change names as its actor; none otherwise (a change by someone only named, or
/// made outside any call).
pub(crate) fn proof_for(actor_id: Option<&str>) -> Option<String> {
    let actor_id = actor_id?;
    CALL.try_with(|call| {
        call.actor
            .as_ref()
            .filter(|a| a.user_id == actor_id)
            .map(|a| a.proof())
    })
    .ok()
    .flatten()
}

/// The API key that made the call under way, by id: what its changes' events record.
pub(crate) fn key_id() -> Option<String> {
    CALL.try_with(|call| call.key_id.clone()).ok().flatten()
}

/// States the call's channel, as its body names it (this overrides the header).
pub fn state(channel: Channel) {
    let _ = CALL.try_with(|call| call.stated.set(Some(channel)));
}

/// The channel the call states, in its body or its header.
pub fn stated() -> Option<Channel> {
    CALL.try_with(|call| call.stated.get()).ok().flatten()
}

/// How a change is attributed: the channel it was made through, and whether it is the first
/// change of an API call (the one that counts the call as a transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribution {
    pub channel: Option<Channel>,
    pub in_call: bool,
    pub first: bool,
}

/// Attributes a change whose own channel (that of what it changes) is `own`. A call is made
/// through one channel: the one it states, else its first change's own; every later change of
/// the call is made through that same channel. Outside any call a change keeps its own.
pub(crate) fn attribute(own: Option<Channel>) -> Attribution {
    CALL.try_with(|call| {
        if call.counted.replace(true) {
            Attribution {
                channel: call.resolved.get(),
                in_call: true,
                first: false,
            }
        } else {
            let channel = call.stated.get().or(own);
            call.resolved.set(channel);
            Attribution {
                channel,
                in_call: true,
                first: true,
            }
        }
    })
    .unwrap_or(Attribution {
        channel: own,
        in_call: false,
        first: false,
    })
}
