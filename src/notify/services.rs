//! The HTTP services' requests and how their answers are read, each as the service documents
//! it:
//!
//! - **webhook**: the native JSON (the parent module's doc), signed.
//! - **generic**: `{"title": …, "message": …}` (keys renamed by `titlekey` / `messagekey`, plus
//!   the `$field`s), the `@Header`s, and the secret as a bearer token.
//! - **ntfy** (docs.ntfy.sh/publish): the text as the body, `Title`, `Priority` (critical:
//!   urgent, warning: high, info: default), `Tags`; the secret as a bearer token.
//! - **Gotify** (`POST /message`): `{"title", "message", "priority"}` with priority 8, 5 or 2
//!   (the Android app rings from 8 up), the app token in `X-Gotify-Key`.
//! - **Slack** incoming webhook (`POST /services/<token>`): `{"text"}` in mrkdwn, the title in
//!   bold; `{"channel"}` when one is configured. Slack answers `200 ok`, or 400/403/404/410
//!   with a word (`invalid_payload`, `no_service`, `channel_is_archived`) that is final.
//! - **Discord** webhook (`POST /api/webhooks/<id>/<token>?wait=true`): one embed with the
//!   title, the text and a colour by severity, under the name "understudy".
//! - **Telegram** bot (`POST /bot<token>/sendMessage`): `{"chat_id", "text"}`, once per chat;
//!   a retry skips the chats that already have it.
//!
//! An answer is delivered on 2xx, retried on 5xx, 429 or no answer, and refused otherwise
//! (the service said no to this message). The wait a 429 asks for is read from `Retry-After`
//! or, where the service puts it there, from the JSON body: Discord's `retry_after` (seconds,
//! fractional), Telegram's `parameters.retry_after`, Matrix's `retry_after_ms`.

use std::time::Duration;

use super::{Channel, Notice, SendError, Severity};
use crate::config::NotifyService;
use crate::store::Event;
use crate::util::now_millis;

/// The request of every service sent by one HTTP request (all but email, Matrix and Telegram).
pub(super) fn request(
    ch: &Channel,
    evs: &[Event],
    msg: &Notice,
    delivery: &str,
) -> reqwest::RequestBuilder {
    let secret = ch.cfg.secret.as_ref().map(|s| s.0.as_str());
    let http = &ch.http;
    match &ch.cfg.service {
        NotifyService::Webhook(url) => webhook(ch, url, evs, msg, delivery),
        NotifyService::Generic(g) => {
            let mut body = serde_json::Map::new();
            body.insert(g.title_key.clone(), msg.title.clone().into());
            body.insert(g.message_key.clone(), msg.text.clone().into());
            for (k, v) in &g.fields {
                body.insert(k.clone(), v.clone().into());
            }
            let mut req = http.post(g.url.clone()).json(&body);
            for (k, v) in &g.headers {
                req = req.header(k, v);
            }
            match secret {
                Some(s) => req.bearer_auth(s),
                None => req,
            }
        }
        NotifyService::Ntfy(url) => {
            let (priority, tag) = match msg.severity {
                Severity::Critical => ("urgent", "rotating_light"),
                Severity::Warning => ("high", "warning"),
                Severity::Info => ("default", "information_source"),
            };
            let req = http
                .post(url.clone())
                .header("Title", &msg.title)
                .header("Priority", priority)
                .header("Tags", format!("{tag},understudy,{}", msg.kind))
                .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(msg.text.clone());
            match secret {
                Some(s) => req.bearer_auth(s),
                None => req,
            }
        }
        NotifyService::Gotify(base) => {
            let priority = match msg.severity {
                Severity::Critical => 8,
                Severity::Warning => 5,
                Severity::Info => 2,
            };
            http.post(format!("{}/message", base.as_str().trim_end_matches('/')))
                .header("X-Gotify-Key", secret.unwrap_or_default())
                .json(&serde_json::json!({
                    "title": msg.title,
                    "message": msg.text,
                    "priority": priority,
                }))
        }
        NotifyService::Slack { api, channel } => {
            let mut body = serde_json::json!({
                "text": format!("*{}*\n{}", slack_escape(&msg.title), slack_escape(&msg.text)),
            });
            if let Some(c) = channel {
                body["channel"] = c.clone().into();
            }
            http.post(format!(
                "{}/services/{}",
                api.as_str().trim_end_matches('/'),
                secret.unwrap_or_default()
            ))
            .json(&body)
        }
        NotifyService::Discord { api, webhook_id } => {
            let colour = match msg.severity {
                Severity::Critical => 0xE0_1B_24,
                Severity::Warning => 0xF5_A6_23,
                Severity::Info => 0x2E_A0_43,
            };
            http.post(format!(
                "{}/api/webhooks/{webhook_id}/{}?wait=true",
                api.as_str().trim_end_matches('/'),
                secret.unwrap_or_default()
            ))
            .json(&serde_json::json!({
                "username": "understudy",
                "embeds": [{
                    "title": clip(&msg.title, 256),
                    "description": clip(&msg.text, 4096),
                    "color": colour,
                }],
            }))
        }
        NotifyService::Email(_) | NotifyService::Matrix { .. } | NotifyService::Telegram { .. } => {
            unreachable!("sent by their own modules")
        }
    }
}

/// The native webhook's request (the parent module's doc).
fn webhook(
    ch: &Channel,
    url: &url::Url,
    evs: &[Event],
    msg: &Notice,
    delivery: &str,
) -> reqwest::RequestBuilder {
    let ev = evs.first();
    let body = serde_json::json!({
        "delivery": delivery,
        "channel": ch.cfg.name,
        "event_id": ev.map(|e| e.id),
        "kind": msg.kind,
        "severity": msg.severity,
        "site": msg.site,
        "at": ev.map_or_else(now_millis, |e| e.at),
        "title": msg.title,
        "text": msg.text,
        "from_phase": ev.and_then(|e| e.from_phase.clone()),
        "to_phase": ev.and_then(|e| e.to_phase.clone()),
        "reason": ev.map(|e| e.reason.clone()),
        "records_before": ev.and_then(|e| e.records_before.clone()),
        "records_after": ev.and_then(|e| e.records_after.clone()),
        "sites": msg.sites,
        "event_ids": evs.iter().map(|e| e.id).collect::<Vec<_>>(),
    })
    .to_string();
    let mut req = ch
        .http
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Understudy-Event", &msg.kind)
        .header("X-Understudy-Delivery", delivery);
    if let Some(secret) = &ch.cfg.secret {
        req = req.header(
            "X-Understudy-Signature-256",
            super::signature(&secret.0, body.as_bytes()),
        );
    }
    req.body(body)
}

/// A Telegram message to every chat that does not have it yet.
pub(super) async fn telegram(ch: &Channel, delivery: &str, msg: &Notice) -> Result<(), SendError> {
    let NotifyService::Telegram { api, chats } = &ch.cfg.service else {
        unreachable!("a telegram channel")
    };
    let token = ch
        .cfg
        .secret
        .as_ref()
        .map(|s| s.0.as_str())
        .unwrap_or_default();
    let url = format!(
        "{}/bot{token}/sendMessage",
        api.as_str().trim_end_matches('/')
    );
    for chat in chats {
        let part = format!("{delivery}/{chat}");
        if ch.parts().contains(&part) {
            continue;
        }
        let req = ch.http.post(&url).json(&serde_json::json!({
            "chat_id": chat,
            "text": clip(&format!("{}\n\n{}", msg.title, msg.text), 4096),
            "disable_web_page_preview": true,
        }));
        answer(ch, req.send().await)
            .await
            .map_err(|e| in_target(e, &format!("chat {chat}")))?;
        ch.parts().insert(part);
    }
    Ok(())
}

/// `e` with the target it was about.
pub(super) fn in_target(e: SendError, target: &str) -> SendError {
    match e {
        SendError::Retry { why, after } => SendError::Retry {
            why: format!("{why} ({target})"),
            after,
        },
        SendError::Refused { why } => SendError::Refused {
            why: format!("{why} ({target})"),
        },
    }
}

/// Reads a service's answer (the module doc).
pub(super) async fn answer(
    ch: &Channel,
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<(), SendError> {
    answer_body(ch, sent).await.map(|_| ())
}

/// [`answer`], keeping a successful answer's body.
pub(super) async fn answer_body(
    ch: &Channel,
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<String, SendError> {
    let what = ch.what();
    let resp = sent.map_err(|e| SendError::Retry {
        // Without the URL: it may carry a token (Slack, Discord, Telegram put it in the path).
        why: crate::http::transport_error(e.without_url(), &what),
        after: None,
    })?;
    let status = resp.status();
    let header_wait = crate::http::retry_after(resp.headers());
    // At most 64 KiB of an answer is read: a receiver cannot make the daemon buffer more.
    let body = read_capped(resp, 64 * 1024).await;
    if status.is_success() {
        return Ok(body);
    }
    let said: String = body.chars().filter(|c| !c.is_control()).take(200).collect();
    let why = format!("{what} answered {status}: {said}");
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        let after = header_wait.or_else(|| wait_in_body(&body));
        Err(SendError::Retry { why, after })
    } else if status.is_server_error() {
        Err(SendError::Retry {
            why,
            after: header_wait,
        })
    } else {
        Err(SendError::Refused { why })
    }
}

async fn read_capped(mut resp: reqwest::Response, cap: usize) -> String {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        out.extend_from_slice(&chunk);
        if out.len() >= cap {
            out.truncate(cap);
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The wait a 429's JSON body asks for (the module doc), at most an hour.
pub(super) fn wait_in_body(body: &str) -> Option<Duration> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let secs = v
        .get("retry_after")
        .or_else(|| v.pointer("/parameters/retry_after"))
        .and_then(serde_json::Value::as_f64)
        .or_else(|| {
            v.get("retry_after_ms")
                .and_then(serde_json::Value::as_f64)
                .map(|ms| ms / 1000.0)
        })?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3_600.0)))
}

/// Slack's mrkdwn wants `&`, `<` and `>` escaped (they make links and mentions).
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// At most `max` characters of `s`, with an ellipsis when cut.
pub(super) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_a_429_asks_for_is_read_from_each_services_body() {
        let cases = [
            (
                r#"{"message":"You are being rate limited.","retry_after":0.64,"global":false}"#,
                Some(640),
            ),
            (
                r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}"#,
                Some(5000),
            ),
            (
                r#"{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests","retry_after_ms":2000}"#,
                Some(2000),
            ),
            (r#"{"retry_after":-1}"#, None),
            (r#"{"retry_after":1e300}"#, Some(3_600_000)),
            ("rate limited", None),
            ("", None),
        ];
        for (body, ms) in cases {
            assert_eq!(
                wait_in_body(body).map(|d| d.as_millis() as u64),
                ms,
                "{body}"
            );
        }
    }

    #[test]
    fn clip_cuts_on_characters_not_bytes() {
        assert_eq!(clip("héllo", 10), "héllo");
        assert_eq!(clip("héllo", 3), "hé…");
        assert_eq!(slack_escape("a<b>&c"), "a&lt;b&gt;&amp;c");
    }
}
