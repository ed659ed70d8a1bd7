//! Finding the line's public address: sources, rounds, agreement.
//!
//! Owns asking the configured sources and turning their answers into a [`Verdict`] per address
//! family (the rule lives in [`agree`], pure). It never publishes anything itself: the watcher
//! sends each round to the controller, the one owner of records, which decides what changes.
//!
//! Sources (their kinds are configuration, [`crate::config::SourceKind`]): HTTP(S) echo
//! services (plain text, or a JSON field), DNS questions (an A, AAAA or TXT question to a given
//! server, the way OpenDNS `myip` and Google's `o-o.myaddr` work), a local interface with
//! netlink events, the push endpoint ([`push`]: dyndns2 and `understudy report`), and the home
//! router over UPnP IGD ([`upnp`]).

pub mod agree;
pub mod push;
pub mod upnp;

use std::time::Duration;

pub use crate::config::{Source, SourceKind};
pub use agree::{Family, Net, Reading, Verdict};
use hickory_proto::rr::{RData, RecordType};

/// The bodies we read from echo services are tiny; anything larger is not an address.
const MAX_BODY: usize = 4 * 1024;

impl Source {
    /// Asks once; any failure or bad answer becomes the `Err` of the answer, with the reason.
    pub async fn ask(
        &self,
        http: &reqwest::Client,
        allow: &[Net],
        board: &push::PushBoard,
    ) -> Reading {
        let raw = match tokio::time::timeout(self.timeout, self.fetch(http, board)).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "no answer within {}",
                crate::util::human(self.timeout)
            )),
        };
        let result = raw.and_then(|text| agree::validate(&text, self.family, allow));
        if let Err(why) = &result {
            tracing::debug!(source = %self.name, "rejected: {why}");
        }
        Reading {
            source: self.name.clone(),
            operator: self.operator.clone(),
            result,
        }
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
        board: &push::PushBoard,
    ) -> Result<String, String> {
        match &self.kind {
            SourceKind::Http { url, json_field } => {
                let resp = http
                    .get(url)
                    .timeout(self.timeout)
                    .send()
                    .await
                    .map_err(|e| format!("request failed: {}", e.without_url()))?;
                let status = resp.status();
                if !status.is_success() {
                    return Err(format!("status {status}"));
                }
                if resp.content_length().is_some_and(|l| l as usize > MAX_BODY) {
                    return Err("body too large for an address".to_string());
                }
                let bytes = resp
                    .bytes()
                    .await
                    .map_err(|e| format!("reading the body: {e}"))?;
                if bytes.len() > MAX_BODY {
                    return Err("body too large for an address".to_string());
                }
                answer_text(&bytes, json_field.as_deref())
            }
            SourceKind::Push { max_age } => board
                .get(self.family, *max_age, crate::util::now_millis())
                .map(|ip| ip.to_string()),
            SourceKind::Upnp { url } => upnp::external_address(http, url, self.timeout).await,
            SourceKind::Interface { name } => {
                let flag = if self.family == Family::Ipv4 {
                    "-4"
                } else {
                    "-6"
                };
                let out = tokio::process::Command::new(ip_binary())
                    .args(["-j", flag, "addr", "show", "dev", name])
                    .kill_on_drop(true)
                    .output()
                    .await
                    .map_err(|e| format!("cannot run `ip` (iproute2): {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "interface {name}: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
                interface_address(&out.stdout, name, self.family)
            }
            SourceKind::Dns {
                server,
                name,
                qtype,
                qclass,
            } => {
                let reply =
                    crate::dns::client::query_class(*server, name, *qtype, *qclass, self.timeout)
                        .await
                        .map_err(|e| e.to_string())?;
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
                        RData::TXT(t) if *qtype == RecordType::TXT => Some(
                            t.txt_data
                                .iter()
                                .map(|d| String::from_utf8_lossy(d).to_string())
                                .collect::<String>(),
                        ),
                        _ => None,
                    })
                    .collect();
                match answers.as_slice() {
                    [] => Err(format!("{server} gave no {qtype} answer")),
                    [one] => Ok(one.clone()),
                    many => Err(format!(
                        "{server} gave {} answers, expected one",
                        many.len()
                    )),
                }
            }
        }
    }
}

fn ip_binary() -> &'static str {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("ip")
}

/// Picks the interface's address from `ip -j addr show` output: global scope, and for IPv6 not
/// temporary, deprecated, tentative or failed. With several, the first one listed wins (the
/// caller still checks it is public).
/// The address text of an HTTP source's answer: the body itself, or the string at
/// `json_field` (dotted path) of a JSON body. Pure, for any bytes the network sends.
pub fn answer_text(body: &[u8], json_field: Option<&str>) -> Result<String, String> {
    if body.len() > MAX_BODY {
        return Err("body too large for an address".to_string());
    }
    let text = std::str::from_utf8(body).map_err(|_| "the body is not text".to_string())?;
    match json_field {
        None => Ok(text.to_string()),
        Some(path) => {
            let v: serde_json::Value = serde_json::from_str(text)
                .map_err(|_| format!("not JSON (expected a field `{path}`)"))?;
            let mut cur = &v;
            for part in path.split('.') {
                cur = cur
                    .get(part)
                    .ok_or_else(|| format!("the JSON has no field `{path}`"))?;
            }
            cur.as_str()
                .map(String::from)
                .ok_or_else(|| format!("the JSON field `{path}` is not a string"))
        }
    }
}

pub fn interface_address(json: &[u8], name: &str, family: Family) -> Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("unreadable `ip -j` output: {e}"))?;
    let want = if family == Family::Ipv4 {
        "inet"
    } else {
        "inet6"
    };
    let mut seen = vec![];
    for link in v.as_array().into_iter().flatten() {
        for a in link
            .get("addr_info")
            .and_then(|a| a.as_array())
            .into_iter()
            .flatten()
        {
            let Some(local) = a.get("local").and_then(|l| l.as_str()) else {
                continue;
            };
            if a.get("family").and_then(|f| f.as_str()) != Some(want) {
                continue;
            }
            let flag = |k: &str| a.get(k).and_then(|x| x.as_bool()).unwrap_or(false);
            let global = a.get("scope").and_then(|s| s.as_str()) == Some("global");
            if global
                && !flag("temporary")
                && !flag("deprecated")
                && !flag("tentative")
                && !flag("dadfailed")
            {
                return Ok(local.to_string());
            }
            seen.push(local.to_string());
        }
    }
    if seen.is_empty() {
        Err(format!("interface {name} has no {family} address"))
    } else {
        Err(format!(
            "interface {name} has no stable global {family} address (only {})",
            seen.join(", ")
        ))
    }
}

/// Watches netlink address events on the given interfaces (via `ip -o monitor address`) and
/// calls `changed` for each event that concerns one of them. Ends when the monitor ends.
pub async fn monitor_interfaces(names: Vec<String>, changed: impl Fn()) -> Result<(), String> {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(ip_binary())
        .args(["-o", "monitor", "address"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run `ip monitor` (iproute2): {e}"))?;
    let stdout = child.stdout.take().ok_or("no output from `ip monitor`")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        // "3: wan0    inet 192.0.2.51/24 scope global ..." or "Deleted 3: wan0 ..."
        if line
            .split_whitespace()
            .any(|w| names.iter().any(|n| n == w))
        {
            changed();
        }
    }
    Ok(())
}

/// Asks every source of `family` at once and agrees.
pub async fn round(
    sources: &[Source],
    family: Family,
    http: &reqwest::Client,
    allow: &[Net],
    quorum: usize,
    board: &push::PushBoard,
) -> (Vec<Reading>, Verdict) {
    let futures = sources.iter().filter(|s| s.family == family).map(|s| {
        let (s, http, allow, board) = (s.clone(), http.clone(), allow.to_vec(), board.clone());
        async move { s.ask(&http, &allow, &board).await }
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

/// Asks every public-address source every `ip.interval` and hands each round to the controller.
///
/// Each round goes to `tx` as `deliver(family, answers, verdict, at)`. Interface sources
/// (netlink address events) and `events` start a round at once, `refresh` (the controller: a
/// dynamic primary stopped answering) at most every 5 s. The interface monitor runs inside
/// this task, so nothing outlives it.
pub async fn watcher<E: Send + 'static>(
    cfg: std::sync::Arc<crate::config::Config>,
    refresh: std::sync::Arc<tokio::sync::Notify>,
    events: std::sync::Arc<tokio::sync::Notify>,
    board: push::PushBoard,
    tx: tokio::sync::mpsc::Sender<E>,
    deliver: impl Fn(Family, Vec<Reading>, Verdict, u64) -> E,
    cancel: tokio_util::sync::CancellationToken,
) {
    let http = match crate::http::client(std::time::Duration::from_secs(30)) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("public address sources disabled: {e}");
            return;
        }
    };
    let mut ticker = tokio::time::interval(cfg.ip.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Rounds asked for by the controller (a dynamic primary stopped answering) come at most
    // this often, so a primary that is really down does not hammer the echo services.
    const FORCED_EVERY: Duration = std::time::Duration::from_secs(5);
    let mut last_forced: Option<tokio::time::Instant> = None;
    // Interface sources: netlink address events start a round at once.
    let interfaces: Vec<String> = cfg
        .ip
        .sources
        .iter()
        .filter_map(|s| match &s.kind {
            SourceKind::Interface { name } => Some(name.clone()),
            _ => None,
        })
        .collect();
    let monitoring = !interfaces.is_empty();
    let ev = events.clone();
    let monitor = async move {
        if !monitoring {
            return std::future::pending::<Result<(), String>>().await;
        }
        monitor_interfaces(interfaces, move || ev.notify_one())
            .await
            .map_err(|e| e.to_string())
    };
    tokio::pin!(monitor);
    let mut monitor_done = false;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            r = &mut monitor, if !monitor_done => {
                monitor_done = true;
                if let Err(e) = r {
                    tracing::error!("interface events unavailable, falling back to polling: {e}");
                }
                continue;
            }
            _ = ticker.tick() => {}
            _ = events.notified() => {
                // Coalesce a burst (delete + add arrive as two events).
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                tracing::debug!("public address round after an interface event");
            }
            _ = refresh.notified() => {
                if last_forced.is_some_and(|t| t.elapsed() < FORCED_EVERY) {
                    continue;
                }
                last_forced = Some(tokio::time::Instant::now());
                tracing::debug!("public address round asked for by a failing dynamic primary");
            }
        }
        for family in cfg.ip.families() {
            let round = round(
                &cfg.ip.sources,
                family,
                &http,
                &cfg.ip.allow,
                cfg.ip.quorum,
                &board,
            );
            let (answers, verdict) = tokio::select! {
                _ = cancel.cancelled() => return,
                r = round => r,
            };
            if tx
                .send(deliver(family, answers, verdict, crate::util::now_millis()))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_picks_a_stable_global_address() {
        let json = br#"[{"ifname":"wan0","addr_info":[
            {"family":"inet6","local":"fe80::1","scope":"link"},
            {"family":"inet6","local":"2001:db8::aaaa","scope":"global","temporary":true},
            {"family":"inet6","local":"2001:db8::dead","scope":"global","deprecated":true},
            {"family":"inet6","local":"2001:db8::5","scope":"global","mngtmpaddr":true},
            {"family":"inet","local":"192.0.2.50","scope":"global"}]}]"#;
        assert_eq!(
            interface_address(json, "wan0", Family::Ipv6).unwrap(),
            "2001:db8::5"
        );
        assert_eq!(
            interface_address(json, "wan0", Family::Ipv4).unwrap(),
            "192.0.2.50"
        );
        let only_link = br#"[{"ifname":"wan0","addr_info":[{"family":"inet6","local":"fe80::1","scope":"link"}]}]"#;
        assert!(interface_address(only_link, "wan0", Family::Ipv6)
            .unwrap_err()
            .contains("only fe80::1"));
        assert!(interface_address(b"[]", "wan0", Family::Ipv4)
            .unwrap_err()
            .contains("no IPv4 address"));
        assert!(interface_address(b"garbage", "wan0", Family::Ipv4).is_err());
    }
}
