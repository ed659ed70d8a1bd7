//! The channel URLs of `[[notify]]`, one parser per service (the forms: the parent module's
//! doc). Each names where messages go and never a credential: the token, password or key is
//! the channel's `secret`, which check-config never prints.

use super::*;

impl Cx<'_> {
    /// The service `url` names, with the `api_url` override for the services whose API has
    /// one fixed address (Slack, Discord, Telegram).
    pub(super) fn service(
        &self,
        url: &Spanned<String>,
        key: &str,
        api_url: &Option<Spanned<String>>,
        base: &str,
    ) -> R<NotifyService> {
        let scheme = url.get_ref().split_once("://").map(|(s, _)| s);
        let fixed = match scheme {
            Some("slack") => Some("https://hooks.slack.com"),
            Some("discord") => Some("https://discord.com"),
            Some("telegram") => Some("https://api.telegram.org"),
            _ => None,
        };
        let api =
            match (api_url, fixed) {
                (Some(a), Some(_)) => self.api_url(a, &format!("{base}.api_url"))?,
                (None, Some(d)) => url::Url::parse(d).expect("a valid default"),
                (Some(a), None) => return self.err(
                    a.span(),
                    &format!("{base}.api_url"),
                    "only slack://, discord:// and telegram:// channels have a fixed API address \
                     to override; the others name their server in `url`",
                ),
                (None, None) => url::Url::parse("https://unused.invalid").expect("valid"),
            };
        match scheme {
            Some("webhook+http" | "webhook+https") => self.webhook(url, key),
            Some("generic+http" | "generic+https") => self.generic(url, key),
            Some("smtp") => self.email(url, key),
            Some("ntfy") => self.ntfy(url, key),
            Some("gotify") => self.gotify(url, key),
            Some("matrix") => self.matrix(url, key),
            Some("slack") => self.slack(url, key, api),
            Some("discord") => self.discord(url, key, api),
            Some("telegram") => self.telegram(url, key, api),
            _ => self.err(
                url.span(),
                key,
                format!(
                    "`{}` is not a channel URL this version knows: use one of {}",
                    redact_userinfo(url.get_ref()),
                    FORMS.join(", ")
                ),
            ),
        }
    }

    /// An `api_url`: http(s), no credentials, plain http only to loopback.
    fn api_url(&self, a: &Spanned<String>, key: &str) -> R<url::Url> {
        let u = match url::Url::parse(a.get_ref()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
            _ => {
                return self.err(
                    a.span(),
                    key,
                    format!("`{}` is not an http(s) URL", redact_userinfo(a.get_ref())),
                )
            }
        };
        self.no_credentials(&u, a, key, "the token")?;
        if u.scheme() == "http" && !is_loopback_host(&u) {
            return self.err(
                a.span(),
                key,
                format!(
                    "{} is not a loopback address: over the network use https://",
                    u.host_str().unwrap_or_default()
                ),
            );
        }
        Ok(u)
    }

    /// Refuses `u` when it carries a user or password: a credential is a `secret`.
    fn no_credentials(&self, u: &url::Url, at: &Spanned<String>, key: &str, what: &str) -> R<()> {
        if u.username().is_empty() && u.password().is_none() {
            return Ok(());
        }
        self.err(
            at.span(),
            key,
            format!(
                "the URL carries credentials, which check-config and the logs would show: \
                 leave them out and give {what} with `secret_file` (or secret / secret_env)"
            ),
        )
    }

    /// `http` unless `?disabletls=yes` (Shoutrrr's word), which only a loopback server may use.
    fn tls_scheme(&self, u: &url::Url, at: &Spanned<String>, key: &str) -> R<&'static str> {
        let plain = u.query_pairs().any(|(k, v)| {
            k.eq_ignore_ascii_case("disabletls") && matches!(&*v, "yes" | "true" | "1")
        });
        if plain && !is_loopback_host(u) {
            return self.err(
                at.span(),
                key,
                format!(
                    "disabletls only to a loopback address, not {}: the token and the message \
                     would cross the network in clear text",
                    u.host_str().unwrap_or_default()
                ),
            );
        }
        Ok(if plain { "http" } else { "https" })
    }

    /// The query parameters of `u`, each checked against `known` (`ntfy`'s `scheme`, ...).
    fn params(
        &self,
        u: &url::Url,
        at: &Spanned<String>,
        key: &str,
        form: &str,
        known: &[&str],
    ) -> R<Vec<(String, String)>> {
        let mut out = Vec::new();
        for (k, v) in u.query_pairs() {
            let k = k.to_ascii_lowercase();
            if !known.contains(&k.as_str()) {
                return self.err(
                    at.span(),
                    key,
                    format!(
                        "`{k}` is not a parameter of {form} URLs{}",
                        if known.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", known.join(", "))
                        }
                    ),
                );
            }
            out.push((k, v.into_owned()));
        }
        Ok(out)
    }

    /// `slack://webhook[?channel=#ops]`: an incoming webhook; its token (what follows
    /// `/services/` in the webhook's address) is the secret.
    fn slack(&self, url: &Spanned<String>, key: &str, api: url::Url) -> R<NotifyService> {
        let u = self.host_url(url, key, "slack://webhook")?;
        self.no_credentials(&u, url, key, "the webhook's token")?;
        if u.host_str() != Some("webhook") || !matches!(u.path(), "" | "/") {
            return self.err(
                url.span(),
                key,
                "write slack://webhook (with ?channel=#name to post elsewhere than the \
                 webhook's own channel); the webhook's token is the secret",
            );
        }
        let channel = self
            .params(&u, url, key, "slack://", &["channel"])?
            .into_iter()
            .map(|(_, v)| v)
            .next();
        Ok(NotifyService::Slack { api, channel })
    }

    /// `discord://WEBHOOK_ID`: the webhook's id; its token is the secret.
    fn discord(&self, url: &Spanned<String>, key: &str, api: url::Url) -> R<NotifyService> {
        let u = self.host_url(url, key, "discord://WEBHOOK_ID")?;
        self.no_credentials(&u, url, key, "the webhook's token")?;
        let id = u.host_str().unwrap_or_default().to_string();
        if !id.bytes().all(|b| b.is_ascii_digit()) || !matches!(u.path(), "" | "/") {
            return self.err(
                url.span(),
                key,
                "write discord://WEBHOOK_ID, the number in the webhook's address \
                 (…/api/webhooks/WEBHOOK_ID/TOKEN); the token is the secret",
            );
        }
        self.params(&u, url, key, "discord://", &[])?;
        Ok(NotifyService::Discord {
            api,
            webhook_id: id,
        })
    }

    /// `telegram://telegram?chats=@channel,-100123`: the chats a bot posts to; the bot's token
    /// is the secret.
    fn telegram(&self, url: &Spanned<String>, key: &str, api: url::Url) -> R<NotifyService> {
        let u = self.host_url(url, key, "telegram://telegram?chats=…")?;
        self.no_credentials(&u, url, key, "the bot's token")?;
        let mut chats = Vec::new();
        for (_, v) in self.params(&u, url, key, "telegram://", &["chats"])? {
            chats.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(String::from),
            );
        }
        if u.host_str() != Some("telegram") || chats.is_empty() {
            return self.err(
                url.span(),
                key,
                "write telegram://telegram?chats=@channel,123456 (chat ids or @channel names); \
                 the bot's token is the secret",
            );
        }
        Ok(NotifyService::Telegram { api, chats })
    }

    /// `gotify://host[:port][/path][?disabletls=yes]`: a Gotify server; the application's token
    /// is the secret.
    fn gotify(&self, url: &Spanned<String>, key: &str) -> R<NotifyService> {
        let u = self.host_url(url, key, "gotify://host")?;
        self.no_credentials(&u, url, key, "the application's token")?;
        self.params(&u, url, key, "gotify://", &["disabletls"])?;
        let scheme = self.tls_scheme(&u, url, key)?;
        Ok(NotifyService::Gotify(self.rebase(&u, scheme, url, key)?))
    }

    /// `matrix://[user@]host[:port][/?rooms=!id:server,#alias:server][&disabletls=yes]`: a
    /// homeserver; the secret is the user's password (with a user, who is logged in) or an
    /// access token (without).
    fn matrix(&self, url: &Spanned<String>, key: &str) -> R<NotifyService> {
        let u = self.host_url(url, key, "matrix://host/?rooms=…")?;
        if u.password().is_some() {
            return self.err(
                url.span(),
                key,
                "the URL carries a password, which check-config and the logs would show: give \
                 it with `secret_file` (or secret / secret_env) instead",
            );
        }
        let mut rooms = Vec::new();
        for (k, v) in self.params(&u, url, key, "matrix://", &["rooms", "disabletls"])? {
            if k == "rooms" {
                rooms.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(String::from),
                );
            }
        }
        // Room ids are `!opaque:server`, or `!opaque` from room version 12 on; aliases are
        // `#name:server` (written `%23name:server` in a URL, where `#` would end the query).
        let room_like = |r: &&String| {
            (r.starts_with('!') && r.len() > 1) || (r.starts_with('#') && r.contains(':'))
        };
        if let Some(bad) = rooms.iter().find(|r| !room_like(r)) {
            return self.err(
                url.span(),
                key,
                format!(
                    "`{bad}` is not a room: give a room id (!abc:server) or alias (#name:server)"
                ),
            );
        }
        if rooms.is_empty() {
            return self.err(
                url.span(),
                key,
                "name the rooms to post to: matrix://host/?rooms=!abc:server,#ops:server",
            );
        }
        let scheme = self.tls_scheme(&u, url, key)?;
        let user = (!u.username().is_empty()).then(|| u.username().to_string());
        let mut home = self.rebase(&u, scheme, url, key)?;
        home.set_path("");
        Ok(NotifyService::Matrix { home, user, rooms })
    }

    /// `u`'s host, port and path under `scheme`, without userinfo or query.
    fn rebase(&self, u: &url::Url, scheme: &str, at: &Spanned<String>, key: &str) -> R<url::Url> {
        let host = u.host_str().unwrap_or_default();
        let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
        let path = u.path().trim_end_matches('/');
        url::Url::parse(&format!("{scheme}://{host}{port}{path}"))
            .or_else(|e| self.err(at.span(), key, format!("{e}")))
    }

    /// `generic+https://host/path[?…]`: a JSON POST `{"title": …, "message": …}` to any
    /// receiver. `titlekey=` and `messagekey=` rename the two keys, `@Name=value` adds a
    /// header, `$key=value` a field; other parameters stay in the URL (`_name` for one of those
    /// names). The secret, if any, is sent as a bearer token.
    fn generic(&self, url: &Spanned<String>, key: &str) -> R<NotifyService> {
        let rest = url.get_ref().strip_prefix("generic+").unwrap_or_default();
        let Some(mut target) = url::Url::parse(rest)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        else {
            return self.err(
                url.span(),
                key,
                format!(
                    "`{}` is not an http(s) URL after `generic+`",
                    redact_userinfo(rest)
                ),
            );
        };
        self.no_credentials(&target, url, key, "a bearer token")?;
        self.plain_http_loopback(&target, url, key, "generic+https://")?;
        let mut g = GenericConfig {
            url: target.clone(),
            title_key: "title".to_string(),
            message_key: "message".to_string(),
            headers: Vec::new(),
            fields: Vec::new(),
        };
        let mut forwarded = Vec::new();
        for (k, v) in target.query_pairs() {
            let lower = k.to_ascii_lowercase();
            if let Some(h) = k.strip_prefix('@') {
                if reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_err()
                    || reqwest::header::HeaderValue::from_str(&v).is_err()
                {
                    return self.err(url.span(), key, format!("`@{h}` is not an HTTP header"));
                }
                g.headers.push((h.to_string(), v.into_owned()));
            } else if let Some(f) = k.strip_prefix('$') {
                g.fields.push((f.to_string(), v.into_owned()));
            } else if lower == "titlekey" {
                g.title_key = v.into_owned();
            } else if lower == "messagekey" {
                g.message_key = v.into_owned();
            } else if let Some(escaped) = k.strip_prefix('_') {
                forwarded.push((escaped.to_string(), v.into_owned()));
            } else {
                forwarded.push((k.into_owned(), v.into_owned()));
            }
        }
        if g.title_key == g.message_key {
            return self.err(
                url.span(),
                key,
                "titlekey and messagekey name the same field",
            );
        }
        target.set_query(None);
        if !forwarded.is_empty() {
            target.query_pairs_mut().extend_pairs(forwarded);
        }
        g.url = target;
        Ok(NotifyService::Generic(g))
    }

    /// Refuses plain `http://` to anything but a loopback address.
    fn plain_http_loopback(
        &self,
        u: &url::Url,
        at: &Spanned<String>,
        key: &str,
        use_: &str,
    ) -> R<()> {
        if u.scheme() == "http" && !is_loopback_host(u) {
            return self.err(
                at.span(),
                key,
                format!(
                    "{} is not a loopback address: over the network use {use_} \
                     (the body says what happened to your sites)",
                    u.host_str().unwrap_or_default()
                ),
            );
        }
        Ok(())
    }

    pub(super) fn webhook(&self, url: &Spanned<String>, key: &str) -> R<NotifyService> {
        let rest = url.get_ref().strip_prefix("webhook+").unwrap_or_default();
        let Some(target) = url::Url::parse(rest)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        else {
            return self.err(
                url.span(),
                key,
                format!(
                    "`{}` is not an http(s) URL after `webhook+`",
                    redact_userinfo(rest)
                ),
            );
        };
        if !target.username().is_empty() || target.password().is_some() {
            return self.err(
                url.span(),
                key,
                "the URL carries credentials (user:password@), which check-config and the \
                 logs would show: leave them out and sign with `secret_file` instead",
            );
        }
        self.plain_http_loopback(&target, url, key, "webhook+https://")?;
        Ok(NotifyService::Webhook(target))
    }

    /// `url` parsed, with a host, or an error saying it is not a `form` URL.
    fn host_url(&self, url: &Spanned<String>, key: &str, form: &str) -> R<url::Url> {
        match url::Url::parse(url.get_ref()) {
            Ok(u) if u.host().is_some() => Ok(u),
            _ => self.err(
                url.span(),
                key,
                format!("`{}` is not an {form} URL", redact_userinfo(url.get_ref())),
            ),
        }
    }

    /// `ntfy://host[:port]/topic` (HTTPS; `?scheme=http` to a loopback server).
    fn ntfy(&self, url: &Spanned<String>, key: &str) -> R<NotifyService> {
        let bad = |why: String| self.err(url.span(), key, why);
        let u = self.host_url(url, key, "ntfy://host/topic")?;
        if !u.username().is_empty() || u.password().is_some() {
            return bad(
                "the URL carries credentials, which check-config and the logs would show: give \
                 the access token with `secret_file` (or secret / secret_env) instead"
                    .to_string(),
            );
        }
        let topic = u.path().trim_matches('/');
        if topic.is_empty() || topic.contains('/') {
            return bad("name one topic after the host: ntfy://ntfy.sh/my-alerts".to_string());
        }
        let mut scheme = "https".to_string();
        for (k, v) in u.query_pairs() {
            match k.as_ref() {
                "scheme" if v == "http" || v == "https" => scheme = v.to_string(),
                other => {
                    return bad(format!(
                        "`{other}={v}` is not a parameter of ntfy:// URLs (scheme=http|https)"
                    ))
                }
            }
        }
        let host = u.host_str().unwrap_or_default();
        let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
        let target = url::Url::parse(&format!("{scheme}://{host}{port}/{topic}"))
            .or_else(|e| self.err(url.span(), key, format!("{e}")))?;
        if scheme == "http" && !is_loopback_host(&target) {
            return bad(format!(
                "scheme=http only to a loopback address, not {host}: the token and the message \
                 would cross the network in clear text"
            ));
        }
        Ok(NotifyService::Ntfy(target))
    }

    fn email(&self, url: &Spanned<String>, key: &str) -> R<NotifyService> {
        let bad = |why: String| self.err(url.span(), key, why);
        let u = self.host_url(url, key, "smtp://host")?;
        if u.password().is_some() {
            return bad(
                "the URL carries a password, which check-config and the logs would show: \
                 give it with `secret_file` (or secret / secret_env) instead"
                    .to_string(),
            );
        }
        let (mut from, mut to, mut tls) = (None, Vec::new(), "auto".to_string());
        for (k, v) in u.query_pairs() {
            match k.to_ascii_lowercase().as_str() {
                "fromaddress" | "from" => from = Some(v.to_string()),
                "toaddresses" | "to" => {
                    to.extend(v.split(',').map(|a| a.trim().to_string()).filter(|a| !a.is_empty()))
                }
                "encryption" => tls = v.to_ascii_lowercase(),
                other => {
                    return bad(format!(
                        "`{other}` is not a parameter of smtp:// URLs: fromaddress, toaddresses, encryption"
                    ))
                }
            }
        }
        let Some(from) = from else {
            return bad("missing `fromaddress=` (the sender, e.g. understudy@example.net)".into());
        };
        if to.is_empty() {
            return bad("missing `toaddresses=` (one address or several, comma-separated)".into());
        }
        for a in std::iter::once(&from).chain(&to) {
            if let Err(e) = a.parse::<lettre::Address>() {
                return bad(format!("`{a}` is not an email address: {e}"));
            }
        }
        let tls = match (tls.as_str(), u.port()) {
            ("auto", Some(465)) | ("implicittls", _) => EmailTls::Implicit,
            ("auto", _) | ("explicittls", _) => EmailTls::StartTls,
            ("none", _) => EmailTls::None,
            (other, _) => {
                return bad(format!(
                    "encryption=`{other}` is not one of auto, explicittls, implicittls, none"
                ))
            }
        };
        if tls == EmailTls::None && !is_loopback_host(&u) {
            return bad(format!(
                "encryption=none sends mail (and any password) in clear text: only to a loopback \
                 address, not {}",
                u.host_str().unwrap_or_default()
            ));
        }
        let port = u
            .port()
            .unwrap_or(if tls == EmailTls::Implicit { 465 } else { 587 });
        Ok(NotifyService::Email(EmailConfig {
            host: u
                .host_str()
                .unwrap_or_default()
                .trim_matches(['[', ']'])
                .to_string(),
            port,
            tls,
            user: (!u.username().is_empty()).then(|| u.username().to_string()),
            from,
            to,
        }))
    }
}
