//! The chat and push services (issue 14): Slack, Discord, Telegram, Gotify and the generic JSON
//! webhook each get the request its service documents, and their error answers (a wrong token,
//! a 429 with the wait in a header or in the JSON body) are read as each service means them;
//! a wave of sites failing over together is one message per channel, not one per site.
//!
//! None of these services can run here, so [`Services`] is a receiver that follows each one's
//! documented API: the paths, the JSON it requires, its success answer and its errors
//! (Slack's `no_service` 404, Discord's 401 `Invalid Webhook Token` and its 429 with
//! `retry_after` seconds, Telegram's `{"ok": false, "error_code": …, "parameters":
//! {"retry_after": …}}`, Gotify's 401). Matrix has a real homeserver: `notify_matrix.rs`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::common::{wait_until, Daemon, Nginx};

const SLACK_TOKEN: &str = "T0001/B0001/slacktokensecret";
const DISCORD_ID: &str = "112233445566778899";
const DISCORD_TOKEN: &str = "discord-token-secret";
const TELEGRAM_TOKEN: &str = "123456:telegram-token-secret";
const GOTIFY_TOKEN: &str = "AgotifyTokenSecret";
const GENERIC_TOKEN: &str = "generic-bearer-secret";
const SECRETS: [&str; 5] = [
    "slacktokensecret",
    DISCORD_TOKEN,
    "telegram-token-secret",
    GOTIFY_TOKEN,
    GENERIC_TOKEN,
];

/// One request a service accepted.
#[derive(Clone, Debug)]
struct Got {
    service: &'static str,
    path: String,
    query: String,
    headers: hyper::HeaderMap,
    body: Value,
}

#[derive(Default)]
struct State {
    got: Vec<Got>,
    /// Requests answered with an error, by service.
    errors: Vec<(&'static str, u16)>,
    /// Services to answer with a 429 once each, before accepting.
    throttle: Vec<&'static str>,
}

struct Services {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _rt: tokio::runtime::Runtime,
}

impl Services {
    fn start() -> Services {
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let (addr, rt) = crate::common::http_server(move |req| handle(req, st.clone()));
        Services {
            addr,
            state,
            _rt: rt,
        }
    }

    fn got(&self, service: &str) -> Vec<Got> {
        let s = self.state.lock().unwrap();
        s.got
            .iter()
            .filter(|g| g.service == service)
            .cloned()
            .collect()
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    st: Arc<Mutex<State>>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let headers = req.headers().clone();
    let method = req.method().clone();
    let raw = req.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let service: &'static str = if path.starts_with("/services/") {
        "slack"
    } else if path.starts_with("/api/webhooks/") {
        "discord"
    } else if path.starts_with("/bot") {
        "telegram"
    } else if path == "/message" {
        "gotify"
    } else {
        "generic"
    };
    let mut s = st.lock().unwrap();
    let error = |s: &mut State, code: u16| s.errors.push((service, code));
    if method != hyper::Method::POST {
        error(&mut s, 405);
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let throttled = s.throttle.iter().position(|t| *t == service);
    match service {
        // api.slack.com/messaging/webhooks: `text` is required; answers are plain words.
        "slack" => {
            if path != format!("/services/{SLACK_TOKEN}") {
                error(&mut s, 404);
                return text(StatusCode::NOT_FOUND, "no_service");
            }
            if !body["text"].is_string() {
                error(&mut s, 400);
                return text(StatusCode::BAD_REQUEST, "invalid_payload");
            }
            if let Some(i) = throttled {
                s.throttle.remove(i);
                error(&mut s, 429);
                return Response::builder()
                    .status(StatusCode::TOO_MANY_REQUESTS)
                    .header("retry-after", "1")
                    .body(Full::new(Bytes::from_static(b"rate_limited")))
                    .unwrap();
            }
        }
        // discord.com/developers/docs/resources/webhook#execute-webhook, and its rate limits.
        "discord" => {
            if path != format!("/api/webhooks/{DISCORD_ID}/{DISCORD_TOKEN}") {
                error(&mut s, 401);
                return reply(
                    StatusCode::UNAUTHORIZED,
                    json!({"message": "Invalid Webhook Token", "code": 50027}),
                );
            }
            if body["content"].is_null() && body["embeds"].as_array().is_none_or(|e| e.is_empty()) {
                error(&mut s, 400);
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({"message": "Cannot send an empty message", "code": 50006}),
                );
            }
            if let Some(i) = throttled {
                s.throttle.remove(i);
                error(&mut s, 429);
                return Response::builder()
                    .status(StatusCode::TOO_MANY_REQUESTS)
                    .header("retry-after", "1")
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(
                        json!({"message": "You are being rate limited.", "retry_after": 0.5, "global": false})
                            .to_string(),
                    )))
                    .unwrap();
            }
        }
        // core.telegram.org/bots/api#making-requests: every answer is {"ok": …}.
        "telegram" => {
            if path != format!("/bot{TELEGRAM_TOKEN}/sendMessage") {
                error(&mut s, 404);
                return reply(
                    StatusCode::NOT_FOUND,
                    json!({"ok": false, "error_code": 404, "description": "Not Found"}),
                );
            }
            let chat = body["chat_id"].as_str().unwrap_or_default();
            if !["@ops-channel", "-1001234"].contains(&chat) {
                error(&mut s, 400);
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}),
                );
            }
            if let Some(i) = throttled {
                s.throttle.remove(i);
                error(&mut s, 429);
                // The wait is in the body only, as Telegram sends it.
                return reply(
                    StatusCode::TOO_MANY_REQUESTS,
                    json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1",
                           "parameters": {"retry_after": 1}}),
                );
            }
        }
        // gotify.net/api-docs: POST /message with the application token.
        "gotify" => {
            let key = headers.get("x-gotify-key").and_then(|v| v.to_str().ok());
            if key != Some(GOTIFY_TOKEN) {
                error(&mut s, 401);
                return reply(
                    StatusCode::UNAUTHORIZED,
                    json!({"error": "Unauthorized", "errorCode": 401,
                           "errorDescription": "you need to provide a valid access token or user credentials to access this api"}),
                );
            }
            if !body["message"].is_string() {
                error(&mut s, 400);
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "Bad Request", "errorCode": 400, "errorDescription": "Field 'message' is required"}),
                );
            }
        }
        _ => {}
    }
    s.got.push(Got {
        service,
        path,
        query,
        headers,
        body,
    });
    match service {
        "slack" => text(StatusCode::OK, "ok"),
        "discord" => reply(StatusCode::OK, json!({"id": "1", "type": 0})),
        "telegram" => reply(
            StatusCode::OK,
            json!({"ok": true, "result": {"message_id": 1}}),
        ),
        "gotify" => reply(StatusCode::OK, json!({"id": 1})),
        _ => reply(StatusCode::OK, json!({})),
    }
}

/// The five channels, all at `svc`, their tokens in files under `dir`; `tokens` replaces a
/// service's right token (to see the wrong one refused).
fn channels(svc: SocketAddr, dir: &std::path::Path, wrong: &str, extra: &str) -> String {
    let file = |name: &str, token: &str| {
        let p = dir.join(name);
        let t = if name.starts_with(wrong) && !wrong.is_empty() {
            "wrong"
        } else {
            token
        };
        std::fs::write(&p, format!("{t}\n")).unwrap();
        p.display().to_string()
    };
    format!(
        r#"
[[notify]]
name = "slack"
url = "slack://webhook?channel=%23ops"
api_url = "http://{svc}"
secret_file = "{}"
{extra}
[[notify]]
name = "discord"
url = "discord://{DISCORD_ID}"
api_url = "http://{svc}"
secret_file = "{}"
{extra}
[[notify]]
name = "telegram"
url = "telegram://telegram?chats=@ops-channel,-1001234"
api_url = "http://{svc}"
secret_file = "{}"
{extra}
[[notify]]
name = "gotify"
url = "gotify://{svc}?disabletls=yes"
secret_file = "{}"
{extra}
[[notify]]
name = "generic"
url = "generic+http://{svc}/hooks/in?team=web&titlekey=subject&messagekey=body&@X-Source=understudy&$app=sites"
secret_file = "{}"
{extra}
"#,
        file(
            "slack.token",
            &format!("https://hooks.slack.com/services/{SLACK_TOKEN}")
        ),
        file("discord.token", DISCORD_TOKEN),
        file("telegram.token", TELEGRAM_TOKEN),
        file("gotify.token", GOTIFY_TOKEN),
        file("generic.token", GENERIC_TOKEN),
    )
}

fn no_secret_in(out: &str) {
    for s in SECRETS {
        assert!(!out.contains(s), "a secret was printed: {s} in\n{out}");
    }
}

#[test]
fn each_service_gets_the_request_it_documents_and_its_errors_are_read_as_it_means_them() {
    let svc = Services::start();
    let keys = tempfile::tempdir().unwrap();
    let site = crate::common::one_site(
        "127.0.0.1:1".parse().unwrap(),
        "127.0.0.2:1".parse().unwrap(),
        "",
    );
    let d = Daemon::prepare(&format!(
        "{site}{}",
        channels(svc.addr, keys.path(), "", "")
    ));
    let (code, out, err) = d.cli(&["notify", "test"]);
    assert_eq!(code, 0, "{out}{err}");
    for ch in ["slack", "discord", "telegram", "gotify", "generic"] {
        assert!(out.contains(&format!("{ch}: delivered in")), "{out}");
    }
    no_secret_in(&format!("{out}{err}"));
    let (_, shown, _) = d.cli(&["check-config"]);
    no_secret_in(&shown);

    let slack = &svc.got("slack")[0];
    assert_eq!(slack.body["channel"], "#ops");
    assert!(
        slack.body["text"]
            .as_str()
            .unwrap()
            .starts_with("*understudy test message*\n"),
        "{}",
        slack.body
    );
    let discord = &svc.got("discord")[0];
    assert_eq!(discord.query, "wait=true");
    assert_eq!(discord.body["username"], "understudy");
    assert_eq!(
        discord.body["embeds"][0]["title"],
        "understudy test message"
    );
    assert!(discord.body["embeds"][0]["color"].is_u64());
    let telegram = svc.got("telegram");
    let chats: Vec<&str> = telegram
        .iter()
        .map(|g| g.body["chat_id"].as_str().unwrap())
        .collect();
    assert_eq!(chats, ["@ops-channel", "-1001234"], "every chat, once");
    assert!(telegram[0].body["text"]
        .as_str()
        .unwrap()
        .starts_with("understudy test message\n\n"));
    let gotify = &svc.got("gotify")[0];
    assert_eq!(gotify.body["title"], "understudy test message");
    assert_eq!(gotify.body["priority"], 2);
    let generic = &svc.got("generic")[0];
    assert_eq!(generic.path, "/hooks/in");
    assert_eq!(
        generic.query, "team=web",
        "the receiver's own parameters are kept"
    );
    assert_eq!(generic.body["subject"], "understudy test message");
    assert!(generic.body["body"]
        .as_str()
        .unwrap()
        .contains("This channel is set up"));
    assert_eq!(generic.body["app"], "sites");
    assert_eq!(generic.headers["x-source"], "understudy");
    assert_eq!(
        generic.headers["authorization"],
        format!("Bearer {GENERIC_TOKEN}").as_str()
    );

    // A 429 is a "try again", with the service's own words.
    svc.state.lock().unwrap().throttle = vec!["slack", "discord", "telegram"];
    let (code, out, _) = d.cli(&["notify", "test"]);
    assert_eq!(code, 1, "{out}");
    for (ch, said) in [
        ("slack", "answered 429 Too Many Requests: rate_limited"),
        ("discord", "You are being rate limited."),
        ("telegram", "Too Many Requests: retry after 1"),
    ] {
        assert!(
            out.contains(&format!("{ch}: NOT delivered")) && out.contains(said),
            "{ch}: {out}"
        );
    }

    // Each service's answer to a wrong token.
    for (wrong, said) in [
        ("slack", "answered 404 Not Found: no_service"),
        (
            "discord",
            "answered 401 Unauthorized: {\"code\":50027,\"message\":\"Invalid Webhook Token\"}",
        ),
        ("telegram", "answered 404 Not Found"),
        ("gotify", "answered 401 Unauthorized"),
    ] {
        let keys = tempfile::tempdir().unwrap();
        let d = Daemon::prepare(&format!(
            "{site}{}",
            channels(svc.addr, keys.path(), wrong, "")
        ));
        let (code, out, err) = d.cli(&["notify", "test", wrong]);
        assert_eq!(code, 1, "{out}{err}");
        assert!(
            out.contains(&format!(
                "{wrong}: NOT delivered: {wrong} channel `{wrong}` {said}"
            )),
            "{wrong}: {out}"
        );
        no_secret_in(&format!("{out}{err}"));
    }
}

/// Twelve sites on one primary that dies (the home line failing): every channel gets one
/// "12 sites failed over" and later one "12 sites are back", however the failovers spread
/// over the probe rounds, and through a 429 with its wait in the JSON body.
#[test]
fn sites_failing_over_together_are_one_message_per_channel() {
    let mut primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let svc = Services::start();
    svc.state.lock().unwrap().throttle = vec!["telegram", "discord"];
    let keys = tempfile::tempdir().unwrap();
    let mut text = crate::common::preamble(&["example.test"]);
    for i in 0..12 {
        text.push_str(&format!(
            "[[sites]]\nname = \"site{i:02}\"\ndomain = \"s{i}.example.test\"\nprimary = \"{}\"\nstandby = \"{}\"\n[sites.probe]\nscheme = \"http\"\ninterval = \"200ms\"\ntimeout = \"300ms\"\nfailures_to_down = 3\nsuccesses_to_up = 2\nhold_down = \"2s\"\n",
            primary.addr, standby.addr
        ));
    }
    text.push_str(&channels(
        svc.addr,
        keys.path(),
        "",
        "events = [\"failed-over\", \"failed-back\"]\ngroup_wait = \"1s\"",
    ));
    let d = Daemon::start(&text);
    wait_until(Duration::from_secs(15), "every standby ready", || {
        d.report().sites.iter().all(|s| s.standby_ready)
    });
    primary.kill();
    d.wait_answer("s11.example.test", "127.0.0.2", Duration::from_secs(10));
    let each_has = |n: usize| {
        svc.got("slack").len() == n
            && svc.got("discord").len() == n
            && svc.got("telegram").len() == 2 * n
            && svc.got("gotify").len() == n
            && svc.got("generic").len() == n
    };
    wait_until(
        Duration::from_secs(20),
        "one failover message on every channel",
        || each_has(1),
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        each_has(1),
        "one message each, not one per site: {:?}",
        svc.state.lock().unwrap().got
    );
    let gotify = &svc.got("gotify")[0].body;
    assert_eq!(gotify["title"], "12 sites failed over to the standby");
    assert_eq!(gotify["priority"], 5);
    let text = gotify["message"].as_str().unwrap();
    for i in 0..12 {
        assert!(
            text.contains(&format!("site{i:02}")),
            "site{i:02} missing: {text}"
        );
    }
    let errors = svc.state.lock().unwrap().errors.clone();
    assert!(
        errors.contains(&("telegram", 429)) && errors.contains(&("discord", 429)),
        "{errors:?}"
    );

    primary.restart();
    d.wait_answer("s11.example.test", "127.0.0.1", Duration::from_secs(20));
    wait_until(
        Duration::from_secs(20),
        "one failback message on every channel",
        || each_has(2),
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(each_has(2), "{:?}", svc.state.lock().unwrap().got);
    let back = &svc.got("generic")[1].body;
    assert_eq!(back["subject"], "12 sites are back on their primaries");
    assert!(
        back["body"]
            .as_str()
            .unwrap()
            .contains("The first outage lasted"),
        "{back}"
    );
    no_secret_in(&d.log());
}
