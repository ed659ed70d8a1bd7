//! Deciding the line's public address from several sources' answers. Pure: no I/O, no clock.
//!
//! [`validate`] turns one raw answer into an address or a reason to reject it: exactly one
//! address of the wanted family, public (not private, loopback, link-local, CGNAT 100.64/10,
//! documentation, multicast, reserved...) unless an allow-listed network covers it, and never
//! an HTML or error page. [`agree`] then counts the valid answers by *operator*: an address is
//! agreed when at least `quorum` different operators report it **and** it has a strict
//! majority of the operators that answered validly. Anything else (too few, or a split vote)
//! publishes nothing: the caller keeps the last good address.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::net::prefix_eq;
pub use crate::net::{Family, Net};

/// Why an address is not a public one, if it is not.
pub fn non_public(ip: &IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: &Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    let nets: &[([u8; 4], u8, &str)] = &[
        ([0, 0, 0, 0], 8, "\"this network\" (0.0.0.0/8)"),
        ([10, 0, 0, 0], 8, "private (10.0.0.0/8)"),
        ([100, 64, 0, 0], 10, "carrier-grade NAT (100.64.0.0/10)"),
        ([127, 0, 0, 0], 8, "loopback (127.0.0.0/8)"),
        ([169, 254, 0, 0], 16, "link-local (169.254.0.0/16)"),
        ([172, 16, 0, 0], 12, "private (172.16.0.0/12)"),
        (
            [192, 0, 0, 0],
            24,
            "IETF protocol assignments (192.0.0.0/24)",
        ),
        ([192, 0, 2, 0], 24, "documentation (192.0.2.0/24)"),
        ([192, 88, 99, 0], 24, "6to4 relay anycast (192.88.99.0/24)"),
        ([192, 168, 0, 0], 16, "private (192.168.0.0/16)"),
        ([198, 18, 0, 0], 15, "benchmarking (198.18.0.0/15)"),
        ([198, 51, 100, 0], 24, "documentation (198.51.100.0/24)"),
        ([203, 0, 113, 0], 24, "documentation (203.0.113.0/24)"),
        ([224, 0, 0, 0], 4, "multicast (224.0.0.0/4)"),
        ([240, 0, 0, 0], 4, "reserved (240.0.0.0/4)"),
    ];
    nets.iter()
        .find(|(n, p, _)| prefix_eq(n, &o, *p))
        .map(|(_, _, why)| *why)
}

fn non_public_v6(ip: &Ipv6Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_unspecified() {
        return Some("unspecified (::)");
    }
    if ip.is_loopback() {
        return Some("loopback (::1)");
    }
    let nets: &[([u8; 16], u8, &str)] = &[
        (
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0],
            96,
            "IPv4-mapped (::ffff:0:0/96)",
        ),
        (
            [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            96,
            "NAT64 (64:ff9b::/96)",
        ),
        (
            [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            64,
            "discard-only (100::/64)",
        ),
        (
            [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            32,
            "documentation (2001:db8::/32)",
        ),
        (
            [0x3f, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            20,
            "documentation (3fff::/20)",
        ),
        (
            [0xfc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            7,
            "unique local (fc00::/7)",
        ),
        (
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            10,
            "link-local (fe80::/10)",
        ),
        (
            [0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            10,
            "site-local (fec0::/10)",
        ),
        (
            [0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            8,
            "multicast (ff00::/8)",
        ),
    ];
    if let Some((_, _, why)) = nets.iter().find(|(n, p, _)| prefix_eq(n, &o, *p)) {
        return Some(why);
    }
    // Only global unicast (2000::/3) is a public address today.
    if o[0] & 0xe0 != 0x20 {
        return Some("not global unicast (outside 2000::/3)");
    }
    None
}

/// Turns a raw answer (a response body, a TXT string, an address) into one public address of
/// `family`, or says why not.
pub fn validate(raw: &str, family: Family, allow: &[Net]) -> Result<IpAddr, String> {
    let text = raw.trim().trim_matches('"').trim();
    if text.is_empty() {
        return Err("empty answer".to_string());
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("<html")
        || lower.contains("<!doctype")
        || lower.contains("<body")
        || lower.starts_with('<')
    {
        return Err("an HTML page, not an address".to_string());
    }
    if text.len() > 64 {
        return Err(format!("{} bytes of text, not an address", text.len()));
    }
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    if words.len() != 1 {
        return Err(format!(
            "{} words, expected exactly one address",
            words.len()
        ));
    }
    // Strip a zone index ("fe80::1%eth0") before parsing; such an address is link-local anyway.
    let word = words[0].split('%').next().unwrap_or("");
    let ip: IpAddr = word
        .parse()
        .map_err(|_| format!("`{}` is not an IP address", shorten(word)))?;
    if Family::of(&ip) != family {
        return Err(format!(
            "{ip} is {}, the source is for {family}",
            Family::of(&ip)
        ));
    }
    if let Some(why) = non_public(&ip) {
        if !allow.iter().any(|n| n.contains(&ip)) {
            return Err(format!("{ip} is not a public address: {why}"));
        }
    }
    Ok(ip)
}

fn shorten(s: &str) -> String {
    s.chars().take(40).collect()
}

/// One source's answer in one round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading {
    pub source: String,
    pub operator: String,
    /// The validated address, or why there is none (an error or a rejected answer).
    pub result: Result<IpAddr, String>,
}

/// The outcome of a round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Publish this address; these sources agreed.
    Agreed {
        addr: IpAddr,
        sources: Vec<String>,
        operators: usize,
    },
    /// Publish nothing; keep the last good address.
    NoAgreement { why: String },
}

/// Counts valid answers by distinct operator; see the module doc for the rule.
pub fn agree(answers: &[Reading], quorum: usize) -> Verdict {
    let mut by_addr: BTreeMap<IpAddr, (BTreeSet<&str>, Vec<String>)> = BTreeMap::new();
    for a in answers {
        if let Ok(ip) = &a.result {
            let e = by_addr.entry(*ip).or_default();
            e.0.insert(a.operator.as_str());
            e.1.push(a.source.clone());
        }
    }
    if by_addr.is_empty() {
        let failed: Vec<String> = answers
            .iter()
            .filter_map(|a| {
                a.result
                    .as_ref()
                    .err()
                    .map(|e| format!("{}: {e}", a.source))
            })
            .collect();
        return Verdict::NoAgreement {
            why: if failed.is_empty() {
                "no sources".to_string()
            } else {
                format!("no valid answer ({})", failed.join("; "))
            },
        };
    }
    let total_ops: usize = by_addr.values().map(|(ops, _)| ops.len()).sum();
    let (best, (ops, sources)) = by_addr
        .iter()
        .max_by_key(|(_, (ops, _))| ops.len())
        .expect("not empty");
    let n = ops.len();
    if by_addr.len() > 1 && n * 2 <= total_ops {
        let split: Vec<String> = by_addr
            .iter()
            .map(|(ip, (ops, _))| format!("{ip} ({} operator(s))", ops.len()))
            .collect();
        return Verdict::NoAgreement {
            why: format!("split vote: {}", split.join(" vs ")),
        };
    }
    if by_addr.len() > 1 && n * 2 > total_ops && n < quorum {
        return Verdict::NoAgreement {
            why: format!("{best} from {n} operator(s), {quorum} needed, and others disagree"),
        };
    }
    if n < quorum {
        return Verdict::NoAgreement {
            why: format!("{best} from {n} operator(s), {quorum} needed"),
        };
    }
    Verdict::Agreed {
        addr: *best,
        sources: sources.clone(),
        operators: n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ans(source: &str, op: &str, ip: &str) -> Reading {
        Reading {
            source: source.into(),
            operator: op.into(),
            result: Ok(ip.parse().unwrap()),
        }
    }
    fn err(source: &str, op: &str) -> Reading {
        Reading {
            source: source.into(),
            operator: op.into(),
            result: Err("timeout".into()),
        }
    }

    #[test]
    fn validate_accepts_one_public_address() {
        assert_eq!(
            validate("8.8.8.8\n", Family::Ipv4, &[])
                .unwrap()
                .to_string(),
            "8.8.8.8"
        );
        assert_eq!(
            validate("\"2a00:1450:4001::1\"", Family::Ipv6, &[])
                .unwrap()
                .to_string(),
            "2a00:1450:4001::1"
        );
        assert_eq!(
            validate("  1.1.1.1  ", Family::Ipv4, &[])
                .unwrap()
                .to_string(),
            "1.1.1.1"
        );
    }

    #[test]
    fn validate_rejects_garbage_and_non_public() {
        let bad = [
            ("", "empty"),
            ("<html><body>502 Bad Gateway</body></html>", "HTML"),
            ("<!DOCTYPE html>", "HTML"),
            ("8.8.8.8 1.1.1.1", "2 words"),
            ("8.8.8.8,1.1.1.1", "2 words"),
            ("not-an-ip", "not an IP"),
            ("999.1.1.1", "not an IP"),
            ("10.1.2.3", "private"),
            ("192.168.1.1", "private"),
            ("172.20.0.1", "private"),
            ("100.64.1.1", "carrier-grade NAT"),
            ("127.0.0.1", "loopback"),
            ("169.254.1.1", "link-local"),
            ("192.0.2.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("0.0.0.0", "this network"),
            ("2001:db8::1", "is IPv6"),
        ];
        for (raw, why) in bad {
            let e = validate(raw, Family::Ipv4, &[]).unwrap_err();
            assert!(e.contains(why), "{raw:?}: {e}");
        }
        for (raw, why) in [
            ("fe80::1%eth0", "link-local"),
            ("fd00::1", "unique local"),
            ("::1", "loopback"),
            ("2001:db8::5", "documentation"),
            ("::ffff:8.8.8.8", "IPv4-mapped"),
            ("ff02::1", "multicast"),
            ("8.8.8.8", "is IPv4"),
        ] {
            let e = validate(raw, Family::Ipv6, &[]).unwrap_err();
            assert!(e.contains(why), "{raw:?}: {e}");
        }
        let long = "1".repeat(100);
        assert!(validate(&long, Family::Ipv4, &[])
            .unwrap_err()
            .contains("bytes of text"));
    }

    #[test]
    fn allow_list_admits_lab_networks() {
        let allow = [
            Net::parse("192.0.2.0/24").unwrap(),
            Net::parse("127.0.0.0/8").unwrap(),
        ];
        assert!(validate("192.0.2.7", Family::Ipv4, &allow).is_ok());
        assert!(validate("127.0.0.5", Family::Ipv4, &allow).is_ok());
        assert!(validate("10.0.0.1", Family::Ipv4, &allow).is_err());
        assert!(Net::parse("10.0.0.0/33").is_err());
        assert!(Net::parse("10.0.0.0").is_err());
        assert!(Net::parse("fd00::/8")
            .unwrap()
            .contains(&"fd12::1".parse().unwrap()));
        assert!(!Net::parse("fd00::/8")
            .unwrap()
            .contains(&"10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn two_operators_agree() {
        let v = agree(
            &[
                ans("a", "op1", "8.8.8.8"),
                ans("b", "op2", "8.8.8.8"),
                err("c", "op3"),
            ],
            2,
        );
        assert_eq!(
            v,
            Verdict::Agreed {
                addr: "8.8.8.8".parse().unwrap(),
                sources: vec!["a".into(), "b".into()],
                operators: 2
            }
        );
    }

    #[test]
    fn same_operator_twice_is_one_vote() {
        let v = agree(
            &[ans("a", "op1", "8.8.8.8"), ans("a2", "op1", "8.8.8.8")],
            2,
        );
        assert!(
            matches!(v, Verdict::NoAgreement { ref why } if why.contains("1 operator(s), 2 needed")),
            "{v:?}"
        );
    }

    #[test]
    fn disagreement_publishes_nothing() {
        let v = agree(&[ans("a", "op1", "8.8.8.8"), ans("b", "op2", "1.1.1.1")], 2);
        assert!(
            matches!(v, Verdict::NoAgreement { ref why } if why.starts_with("split vote")),
            "{v:?}"
        );
        // 2 vs 2 is still split.
        let v = agree(
            &[
                ans("a", "o1", "8.8.8.8"),
                ans("b", "o2", "8.8.8.8"),
                ans("c", "o3", "1.1.1.1"),
                ans("d", "o4", "1.1.1.1"),
            ],
            2,
        );
        assert!(matches!(v, Verdict::NoAgreement { .. }));
        // A clear majority with quorum wins over one dissenter.
        let v = agree(
            &[
                ans("a", "o1", "8.8.8.8"),
                ans("b", "o2", "8.8.8.8"),
                ans("c", "o3", "1.1.1.1"),
            ],
            2,
        );
        assert!(matches!(v, Verdict::Agreed { .. }), "{v:?}");
    }

    #[test]
    fn all_down_publishes_nothing() {
        let v = agree(&[err("a", "o1"), err("b", "o2")], 2);
        assert!(
            matches!(v, Verdict::NoAgreement { ref why } if why.contains("no valid answer")),
            "{v:?}"
        );
        assert!(matches!(agree(&[], 1), Verdict::NoAgreement { .. }));
    }

    #[test]
    fn quorum_of_one_for_single_source_setups() {
        assert!(matches!(
            agree(&[ans("a", "o1", "8.8.8.8")], 1),
            Verdict::Agreed { .. }
        ));
    }

    proptest! {
        /// Whatever the answers, an agreed address was reported by at least `quorum` operators
        /// and by a strict majority of the operators that answered.
        #[test]
        fn agreed_means_quorum_and_majority(
            quorum in 1usize..4,
            votes in prop::collection::vec((0u8..5, 0u8..3, any::<bool>()), 0..12),
        ) {
            let answers: Vec<Reading> = votes.iter().enumerate().map(|(i, (op, ip, ok))| Reading {
                source: format!("s{i}"),
                operator: format!("op{op}"),
                result: if *ok { Ok(IpAddr::V4(Ipv4Addr::new(8, 8, 8, *ip))) } else { Err("x".into()) },
            }).collect();
            if let Verdict::Agreed { addr, operators, .. } = agree(&answers, quorum) {
                let ops_for = |ip: IpAddr| answers.iter().filter(|a| a.result == Ok(ip)).map(|a| a.operator.clone()).collect::<BTreeSet<_>>().len();
                prop_assert!(operators >= quorum);
                prop_assert_eq!(ops_for(addr), operators);
                let others: usize = (0..3u8).map(|i| IpAddr::V4(Ipv4Addr::new(8, 8, 8, i))).filter(|ip| *ip != addr).map(ops_for).sum();
                prop_assert!(operators > others, "no strict majority: {} vs {}", operators, others);
            }
        }

        /// validate never panics and never returns a non-public address without an allow-list.
        #[test]
        fn validate_is_total(s in ".{0,80}") {
            for fam in [Family::Ipv4, Family::Ipv6] {
                if let Ok(ip) = validate(&s, fam, &[]) {
                    prop_assert!(non_public(&ip).is_none());
                    prop_assert_eq!(Family::of(&ip), fam);
                }
            }
        }
    }
}
