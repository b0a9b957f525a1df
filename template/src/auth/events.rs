//! Account security events, live: `subscription { accountEvents { kind at endsThisSession } }`.
//!
//! An event raised on any replica reaches the account's subscriptions on every replica
//! through Redis pub/sub (see `fanout.rs`), one topic per account. Nothing is queued: a
//! subscriber that was away re-reads its session on reconnecting, and every event (or
//! gap) re-checks the subscriber's session and account before anything is delivered, so
//! a revoked session, a disabled account or one deleted never hears another event.

use std::{pin::Pin, time::Duration};

use chrono::{DateTime, Utc};
use futures_util::{Stream, stream};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::sessions::ActiveSession;
use crate::{
    domain::UserId,
    error::AppError,
    fanout::{Fanout, Notice},
    graphql::Context,
    redis::Redis,
    storage::users::UserRepository,
};

/// What happened to the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, juniper::GraphQLEnum)]
pub enum AccountEventKind {
    /// A new session started (a sign-in on some device).
    SignedIn,
    /// Sessions were ended: a logout, `logoutEverywhere`, or `revokeSession`.
    SessionRevoked,
    /// The password changed; the other sessions ended.
    PasswordChanged,
    /// The account moved to another address; the other sessions ended.
    EmailChanged,
    /// The second factor was turned on or off, or got new recovery codes.
    SecondFactorChanged,
    /// An admin disabled the account; every session ended.
    AccountDisabled,
    /// The account was deleted; every session ended.
    AccountDeleted,
}

/// Which of the account's sessions an event ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    None,
    All,
    /// Every session but the one with this public id.
    AllBut(String),
    /// The session with this public id.
    Only(String),
}

impl Ended {
    fn includes(&self, session_id: &str) -> bool {
        match self {
            Self::None => false,
            Self::All => true,
            Self::AllBut(kept) => kept != session_id,
            Self::Only(ended) => ended == session_id,
        }
    }
}

/// An event as it travels between replicas.
#[derive(Debug, Serialize, Deserialize)]
struct Raised {
    kind: AccountEventKind,
    at: DateTime<Utc>,
    ended: Ended,
}

impl Raised {
    fn event(&self, ends_this_session: bool) -> AccountEvent {
        AccountEvent {
            kind: self.kind,
            at: self.at,
            ends_this_session,
        }
    }
}

/// A security event of the signed-in account.
#[derive(Debug, Clone, juniper::GraphQLObject)]
pub struct AccountEvent {
    pub kind: AccountEventKind,
    pub at: DateTime<Utc>,
    /// The event ended the session this subscription runs on: it is the last one, and
    /// the server closes the connection (4401) after it.
    pub ends_this_session: bool,
}

pub type AccountEventStream = Pin<Box<dyn Stream<Item = AccountEvent> + Send>>;

/// Raises events and listens to them: the accounts' topics on one Redis channel.
pub struct AccountEvents {
    fanout: Fanout,
}

impl AccountEvents {
    pub fn new(redis: &Redis) -> Self {
        Self {
            fanout: Fanout::new(redis.clone(), redis.key("account-events")),
        }
    }

    /// Tells `user`'s subscriptions on every replica. A failure is logged, not returned:
    /// what the event reports has happened, and subscriptions re-check their session
    /// on their own (see `websocket`'s `session_check_secs`).
    pub async fn raise(&self, user: UserId, kind: AccountEventKind, ended: Ended) {
        let raised = Raised {
            kind,
            at: Utc::now(),
            ended,
        };
        let message = serde_json::to_string(&raised).expect("an event serializes");
        if let Err(error) = self.fanout.publish(&user.to_string(), &message).await {
            tracing::warn!(%error, ?kind, "Failed to publish an account event");
        }
    }
}

/// How long a subscription whose session a re-check found over waits for the event
/// that ended it, so that this event is its last, before it ends without one.
const ENDING_EVENT_GRACE: Duration = Duration::from_secs(1);

/// The resolver of `accountEvents`: the signed-in account's events until its session
/// ends. The last event a subscription sees is the one that ended its session (or, when
/// that event was lost, none: the stream just ends), after which the request's auth
/// is marked ended for the connection to close. Events raised while the session was
/// already over are not delivered.
///
/// # Errors
/// `Unauthenticated` without a live session.
pub async fn account_events(context: &Context) -> Result<AccountEventStream, AppError> {
    let user = context.require_user().await?;
    let session = context
        .auth
        .session()
        .cloned()
        .ok_or(AppError::Unauthenticated("sign in to continue"))?;
    let listener = context
        .state
        .auth
        .events
        .fanout
        .listen(&user.id.to_string());
    let context = context.clone();
    let events = stream::unfold(Some(listener), move |listener| {
        let context = context.clone();
        let session = session.clone();
        async move {
            let mut listener = listener?;
            // Set once a re-check finds the subscriber out of standing: the event that
            // put it there, raised just after the change, gets a moment to arrive.
            let mut standing_lost: Option<Instant> = None;
            loop {
                let next = listener.next();
                let notice = match standing_lost {
                    None => next.await,
                    Some(lost) => {
                        match tokio::time::timeout_at(lost + ENDING_EVENT_GRACE, next).await {
                            Ok(notice) => notice,
                            Err(_) => {
                                context.auth.end_session();
                                return None;
                            }
                        }
                    }
                };
                let raised = match notice {
                    Notice::Message(text) => match serde_json::from_str::<Raised>(&text) {
                        Ok(raised) => Some(raised),
                        Err(error) => {
                            tracing::warn!(%error, "Ignored a malformed account event");
                            continue;
                        }
                    },
                    Notice::Missed => None,
                };
                if let Some(raised) = &raised
                    && raised.ended.includes(&session.id())
                {
                    context.auth.end_session();
                    return Some((raised.event(true), None));
                }
                if standing_lost.is_none() && !in_good_standing(&context, &session).await {
                    standing_lost = Some(Instant::now());
                }
                // A gap, or an event the subscriber may no longer hear, is passed over.
                if let Some(raised) = raised
                    && standing_lost.is_none()
                {
                    return Some((raised.event(false), Some(listener)));
                }
            }
        }
    });
    Ok(Box::pin(events))
}

/// Whether `session` still lives and its account may still subscribe: the field's
/// guard, run again on fresh data. Without Redis or storage to ask, the subscriber keeps
/// its standing (the connection's periodic check ends it once they answer).
async fn in_good_standing(context: &Context, session: &ActiveSession) -> bool {
    let live = context.state.auth.sessions.is_live(session).await;
    let account = context.state.storage.find_by_id(session.user_id).await;
    match (live, account) {
        (Ok(live), Ok(account)) => live && account.is_some_and(|user| user.disabled.is_none()),
        (Ok(false), _) | (_, Ok(None)) => false,
        (Err(error), _) => {
            tracing::warn!(%error, "Could not re-check a subscriber's session");
            true
        }
        (_, Err(error)) => {
            tracing::warn!(%error, "Could not re-check a subscriber's account");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_ends_the_sessions_it_names() {
        assert!(!Ended::None.includes("a"));
        assert!(Ended::All.includes("a"));
        assert!(Ended::AllBut("b".into()).includes("a"));
        assert!(!Ended::AllBut("a".into()).includes("a"));
        assert!(Ended::Only("a".into()).includes("a"));
        assert!(!Ended::Only("b".into()).includes("a"));
    }

    #[test]
    fn events_travel_as_json() {
        let raised = Raised {
            kind: AccountEventKind::PasswordChanged,
            at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            ended: Ended::AllBut("kept".into()),
        };

        let text = serde_json::to_string(&raised).unwrap();

        assert_eq!(
            text,
            r#"{"kind":"PasswordChanged","at":"2023-11-14T22:13:20Z","ended":{"all_but":"kept"}}"#
        );
        let back: Raised = serde_json::from_str(&text).unwrap();
        assert_eq!(back.ended, raised.ended);
    }
}
