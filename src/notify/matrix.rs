//! Matrix, by the client-server API (spec.matrix.org, v3):
//!
//! 1. With a user configured, log in once (`POST /_matrix/client/v3/login`, `m.login.password`)
//!    and keep the access token; without one, the secret is the access token.
//! 2. Join each room once (`POST /_matrix/client/v3/join/{roomIdOrAlias}`): joining a room the
//!    user is in already is a no-op, an alias is resolved to its room id by the answer, and a
//!    room that invited the user is entered.
//! 3. Send (`PUT /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}`) with the
//!    delivery id and the room as the transaction id, so a retry of one message is the same
//!    transaction to the homeserver, which keeps one copy.
//!
//! A token the server no longer knows (401 `M_UNKNOWN_TOKEN`) is dropped and, with a user,
//! the next try logs in again. The homeserver's 429 `retry_after_ms` is honoured.

use tokio::sync::Mutex;

use super::services::{answer_body, in_target};
use super::{Channel, Notice, SendError};
use crate::config::NotifyService;

/// What a channel keeps between messages.
#[derive(Default)]
pub(super) struct Session {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    token: Option<String>,
    /// Configured room (id or alias) → room id, for the rooms joined.
    joined: Vec<(String, String)>,
}

pub(super) async fn send(ch: &Channel, delivery: &str, msg: &Notice) -> Result<(), SendError> {
    let NotifyService::Matrix { home, user, rooms } = &ch.cfg.service else {
        unreachable!("a matrix channel")
    };
    let secret = ch
        .cfg
        .secret
        .as_ref()
        .map(|s| s.0.clone())
        .unwrap_or_default();
    let mut s = ch.matrix.inner.lock().await;
    let token = match (&s.token, user) {
        (Some(t), _) => t.clone(),
        (None, None) => secret.clone(),
        (None, Some(u)) => {
            let t = login(ch, home, u, &secret).await?;
            s.token = Some(t.clone());
            t
        }
    };
    let result = async {
        for room in rooms {
            let part = format!("{delivery}/{room}");
            if ch.parts().contains(&part) {
                continue;
            }
            let id = match s.joined.iter().find(|(r, _)| r == room) {
                Some((_, id)) => id.clone(),
                None => {
                    let id = join(ch, home, &token, room).await?;
                    s.joined.push((room.clone(), id.clone()));
                    id
                }
            };
            let mut url = home.clone();
            url.path_segments_mut()
                .map_err(|_| SendError::Refused {
                    why: format!("{}: {home} cannot have a path", ch.what()),
                })?
                .extend([
                    "_matrix",
                    "client",
                    "v3",
                    "rooms",
                    &id,
                    "send",
                    "m.room.message",
                    &format!("{delivery}.{}", room_txn(room)),
                ]);
            let body = format!("{}\n\n{}", msg.title, msg.text);
            let req = ch
                .http
                .put(url)
                .bearer_auth(&token)
                .json(&serde_json::json!({
                    "msgtype": "m.text",
                    "body": body,
                }));
            answer_body(ch, req.send().await)
                .await
                .map_err(|e| in_target(e, &format!("room {room}")))?;
            ch.parts().insert(part);
        }
        Ok(())
    }
    .await;
    if let Err(SendError::Refused { why }) = &result {
        if why.contains("M_UNKNOWN_TOKEN") {
            // Logged out or expired: log in again (with a user) on the next try.
            s.token = None;
            s.joined.clear();
            if user.is_some() {
                return Err(SendError::Retry {
                    why: why.clone(),
                    after: Some(std::time::Duration::from_secs(1)),
                });
            }
        }
    }
    result
}

/// A transaction id part for `room`: its characters that are safe in a path segment.
fn room_txn(room: &str) -> String {
    room.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

async fn login(
    ch: &Channel,
    home: &url::Url,
    user: &str,
    password: &str,
) -> Result<String, SendError> {
    let url = format!(
        "{}/_matrix/client/v3/login",
        home.as_str().trim_end_matches('/')
    );
    let req = ch.http.post(url).json(&serde_json::json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
        "initial_device_display_name": "understudy",
    }));
    let body = answer_body(ch, req.send().await)
        .await
        .map_err(|e| in_target(e, "login"))?;
    field(&body, "access_token").ok_or_else(|| SendError::Retry {
        why: format!("{}: the login answer has no access_token", ch.what()),
        after: None,
    })
}

async fn join(ch: &Channel, home: &url::Url, token: &str, room: &str) -> Result<String, SendError> {
    let mut url = home.clone();
    if let Ok(mut p) = url.path_segments_mut() {
        p.extend(["_matrix", "client", "v3", "join", room]);
    }
    let req = ch
        .http
        .post(url)
        .bearer_auth(token)
        .json(&serde_json::json!({}));
    let body = answer_body(ch, req.send().await)
        .await
        .map_err(|e| in_target(e, &format!("joining {room}")))?;
    field(&body, "room_id").ok_or_else(|| SendError::Retry {
        why: format!("{}: joining {room} answered no room_id", ch.what()),
        after: None,
    })
}

fn field(body: &str, key: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get(key)?.as_str().map(str::to_string)
}
