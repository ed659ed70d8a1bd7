//! Finding the line's public address: sources, rounds, agreement.
//!
//! Owns asking the configured sources and turning their answers into a [`Verdict`] per address
//! family (the rule lives in [`agree`], pure). It never publishes anything itself: the watcher
//! sends each round to the controller, the one owner of records, which decides what changes.
//!
//! Sources here: HTTP(S) echo services (plain text, or a JSON field) and DNS questions (an A,
//! AAAA or TXT question to a given server, the way OpenDNS `myip` and Google's `o-o.myaddr`
//! work). Not here yet: a local interface with netlink events, the push endpoint (dyndns2 and
//! `understudy report`), UPnP IGD.

pub mod agree;

use std::net::SocketAddr;
use std::time::Duration;

pub use agree::{Answer, Family, Net, Verdict};
use hickory_proto::rr::{Name, RData, RecordType};

/// How a source is asked.
#[derive(Clone, Debug)]
pub enum SourceKind {
    /// GET the URL; the body is the address, or a JSON object with the address at `json_field`
    /// (a dotted path such as `ip` or `data.address`).
    Http { url: String, json_field: Option<String> },
    /// Ask `server` for `name` (type A, AAAA or TXT); the answer is the address.
    Dns { server: SocketAddr, name: Name, qtype: RecordType },
}

#[derive(Clone, Debug)]
pub struct Source {
    pub name: String,
    /// Who runs it: agreement counts operators, not sources.
    pub operator: String,
    pub family: Family,
    pub kind: SourceKind,
    pub timeout: Duration,
}

/// The bodies we read from echo services are tiny; anything larger is not an address.
const MAX_BODY: usize = 4 * 1024;

impl Source {
    /// Asks once; any failure or bad answer becomes the `Err` of the answer, with the reason.
    pub async fn ask(&self, http: &reqwest::Client, allow: &[Net]) -> Answer {
        let raw = match tokio::time::timeout(self.timeout, self.fetch(http)).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {}", crate::util::human_duration(self.timeout.as_millis() as u64))),
        };
        let result = raw.and_then(|text| agree::validate(&text, self.family, allow));
        if let Err(why) = &result {
            tracing::debug!(source = %self.name, "rejected: {why}");
        }
        Answer { source: self.name.clone(), operator: self.operator.clone(), result }
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<String, String> {
        match &self.kind {
            SourceKind::Http { url, json_field } => {
                let resp = http.get(url).timeout(self.timeout).send().await.map_err(|e| format!("request failed: {}", e.without_url()))?;
                let status = resp.status();
                if !status.is_success() {
                    return Err(format!("status {status}"));
                }
                if resp.content_length().is_some_and(|l| l as usize > MAX_BODY) {
                    return Err("body too large for an address".to_string());
                }
                let bytes = resp.bytes().await.map_err(|e| format!("reading the body: {e}"))?;
                if bytes.len() > MAX_BODY {
                    return Err("body too large for an address".to_string());
                }
                let text = String::from_utf8(bytes.to_vec()).map_err(|_| "the body is not text".to_string())?;
                match json_field {
                    None => Ok(text),
                    Some(path) => {
                        let v: serde_json::Value =
                            serde_json::from_str(&text).map_err(|_| format!("not JSON (expected a field `{path}`)"))?;
                        let mut cur = &v;
                        for part in path.split('.') {
                            cur = cur.get(part).ok_or_else(|| format!("the JSON has no field `{path}`"))?;
                        }
                        cur.as_str().map(String::from).ok_or_else(|| format!("the JSON field `{path}` is not a string"))
                    }
                }
            }
            SourceKind::Dns { server, name, qtype } => {
                let reply = crate::dns::client::query(*server, name, *qtype, self.timeout).await.map_err(|e| e.to_string())?;
                if reply.rcode != hickory_proto::op::ResponseCode::NoError {
                    return Err(format!("{server} answered {}", reply.rcode));
                }
                let answers: Vec<String> = reply
                    .message
                    .answers
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::A(a) if *qtype == RecordType::A => Some(a.0.to_string()),
                        RData::AAAA(a) if *qtype == RecordType::AAAA => Some(a.0.to_string()),
                        RData::TXT(t) if *qtype == RecordType::TXT => {
                            Some(t.txt_data.iter().map(|d| String::from_utf8_lossy(d).to_string()).collect::<String>())
                        }
                        _ => None,
                    })
                    .collect();
                match answers.as_slice() {
                    [] => Err(format!("{server} gave no {qtype} answer")),
                    [one] => Ok(one.clone()),
                    many => Err(format!("{server} gave {} answers, expected one", many.len())),
                }
            }
        }
    }
}

/// Asks every source of `family` at once and agrees.
pub async fn round(sources: &[Source], family: Family, http: &reqwest::Client, allow: &[Net], quorum: usize) -> (Vec<Answer>, Verdict) {
    let futures = sources.iter().filter(|s| s.family == family).map(|s| {
        let (s, http, allow) = (s.clone(), http.clone(), allow.to_vec());
        async move { s.ask(&http, &allow).await }
    });
    let answers = futures_join_all(futures).await;
    let verdict = agree::agree(&answers, quorum);
    (answers, verdict)
}

/// Runs futures concurrently and collects their outputs in order (no extra crate for this).
async fn futures_join_all<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (i, f) in futs.enumerate() {
        set.spawn(async move { (i, f.await) });
    }
    let mut out: Vec<(usize, F::Output)> = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(v) = r {
            out.push(v);
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, v)| v).collect()
}
