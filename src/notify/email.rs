//! Email over SMTP (lettre, rustls with ring): STARTTLS (required, never a silent fall back to
//! clear text), implicit TLS, or clear text to a loopback relay. One connection per message:
//! a notification is rare, and a connection kept open would only go stale.
//!
//! The mail's subject is the notice's title, its body the text plus what it is about; its
//! `Message-ID` is made of the delivery id, so a retry of one message is the same message to
//! the receiving server and to a mail client's de-duplication; `X-Understudy-Event` carries
//! the kind for filters.

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Notice, SendError, SEND_TIMEOUT};
use crate::config::{EmailConfig, EmailTls, NotifyConfig};

/// `X-Understudy-Event: <kind>`.
#[derive(Clone)]
struct EventHeader(String);

impl lettre::message::header::Header for EventHeader {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("X-Understudy-Event")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(EventHeader(s.to_string()))
    }
    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// Sends `notice` as one mail to every recipient.
pub(super) async fn send(
    ch: &NotifyConfig,
    mail: &EmailConfig,
    delivery: &str,
    notice: &Notice,
) -> Result<(), SendError> {
    let what = format!("email channel `{}` ({}:{})", ch.name, mail.host, mail.port);
    let refused = |why: String| SendError::Refused { why };
    let mut m = Message::builder()
        .from(
            mail.from
                .parse()
                .map_err(|e| refused(format!("{what}: from: {e}")))?,
        )
        .subject(format!("[understudy] {}", notice.title))
        .message_id(Some(format!("<{delivery}@understudy.invalid>")))
        .header(EventHeader(notice.kind.clone()))
        .header(ContentType::TEXT_PLAIN);
    for to in &mail.to {
        m = m.to(to
            .parse()
            .map_err(|e| refused(format!("{what}: to: {e}")))?);
    }
    let body = if notice.site.is_empty() {
        format!("{}\n", notice.text)
    } else {
        format!(
            "{}\n\nsite: {}\nevent: {} ({:?})\n",
            notice.text, notice.site, notice.kind, notice.severity
        )
    };
    let message = m.body(body).map_err(|e| refused(format!("{what}: {e}")))?;
    let transport = transport(ch, mail).map_err(|why| refused(format!("{what}: {why}")))?;
    match transport.send(message).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_permanent() => Err(refused(format!("{what}: {e}"))),
        Err(e) => Err(SendError::Retry {
            why: format!("{what}: {e}"),
            after: None,
        }),
    }
}

fn transport(
    ch: &NotifyConfig,
    mail: &EmailConfig,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let params = || -> Result<TlsParameters, String> {
        let mut b = TlsParameters::builder(mail.host.clone());
        if let Some(f) = &ch.ca_file {
            let pem = std::fs::read(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
            let cert = Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", f.display()))?;
            b = b.add_root_certificate(cert);
        }
        b.build_rustls().map_err(|e| format!("TLS setup: {e}"))
    };
    let tls = match mail.tls {
        EmailTls::StartTls => Tls::Required(params()?),
        EmailTls::Implicit => Tls::Wrapper(params()?),
        EmailTls::None => Tls::None,
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&mail.host)
        .port(mail.port)
        .tls(tls)
        .timeout(Some(SEND_TIMEOUT));
    if let (Some(user), Some(secret)) = (&mail.user, &ch.secret) {
        b = b.credentials(Credentials::new(user.clone(), secret.0.clone()));
    }
    Ok(b.build())
}
