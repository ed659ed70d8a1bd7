//! Small shared helpers: durations in words and the wall clock.
//!
//! The clock is read here and only at the edges (controller, probes); the decision core gets
//! the time as an argument.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

// Time in words: every format understudy writes a time in is here, built on [`civil_utc`].
// `utc` is the one for people (logs, reports, `status`, readiness); the others each serve one
// reader: HTTP headers, the visitor's banner, backup file names.

/// "2026-11-24 08:40:01 UTC" from Unix milliseconds: logs, reports, the CLI.
pub fn utc(ms: u64) -> String {
    let (y, m, d, hh, mm, ss) = civil_utc(ms);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02} UTC")
}

/// An HTTP date ("Tue, 24 Nov 2026 03:00:12 GMT", RFC 9110 §5.6.7) for response headers.
pub fn http_date(ms: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms))
}

/// "24 Nov 2026 03:00 UTC": the standby banner a visitor reads (no ambiguous day/month order).
pub fn utc_minutes(ms: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d, hh, mm, _) = civil_utc(ms);
    let month = MONTHS[(m as usize).clamp(1, 12) - 1];
    format!("{d:02} {month} {y:04} {hh:02}:{mm:02} UTC")
}

/// The civil UTC date and time of Unix milliseconds: (year, month, day, hour, minute, second)
/// (days-to-civil, proleptic Gregorian).
pub fn civil_utc(ms: u64) -> (i64, i64, i64, u64, u64, u64) {
    let secs = ms / 1_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3_600, (rem % 3_600) / 60, rem % 60)
}

/// "2026-11-24" (UTC) from Unix milliseconds.
pub fn utc_date(ms: u64) -> String {
    let (y, m, d, ..) = civil_utc(ms);
    format!("{y:04}-{m:02}-{d:02}")
}

/// [`human_duration`] of a [`Duration`].
pub fn human(d: Duration) -> String {
    human_duration(d.as_millis() as u64)
}

/// A size for people: "512 B", "3.4 KiB", "1.2 GiB".
pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// "just now", "12s ago", "5m3s ago".
pub fn ago(ms: u64) -> String {
    if ms < 1_000 {
        "just now".to_string()
    } else {
        format!("{} ago", human_duration(ms / 1_000 * 1_000))
    }
}

/// "300ms", "2s", "1.5s", "5m", "1h30m": short and exact enough for operator messages.
pub fn human_duration(ms: u64) -> String {
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    if ms < 60_000 {
        return if ms.is_multiple_of(1_000) {
            format!("{}s", ms / 1_000)
        } else {
            format!("{:.1}s", ms as f64 / 1_000.0)
        };
    }
    let secs = ms / 1_000;
    let (h, m, s) = (secs / 3_600, (secs % 3_600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// Parses "500ms", "2s", "1.5s", "5m", "2h", "1h30m". Bare numbers are not accepted here: the
/// config layer turns TOML numbers into seconds itself.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let t = compact.as_str();
    if t.is_empty() {
        return Err("empty duration".to_string());
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("`{t}` is not a duration like 500ms, 2s, 5m or 1h"));
        }
        let value: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("`{t}` is not a duration like 500ms, 2s, 5m or 1h"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3_600.0,
            "d" => 86_400.0,
            "" => return Err(format!("`{t}` has no unit: write e.g. {value}s")),
            other => {
                return Err(format!(
                    "unknown unit `{other}` in `{t}`: use ms, s, m, h or d"
                ))
            }
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > 365.0 * 86_400.0 {
        return Err(format!("`{t}` is too long"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// The SHA-256 of `bytes` in lower-case hex (ring): content addresses and stable short names.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes to standard output; a closed pipe (`understudy status | head -1`) ends the process
/// quietly with status 0 instead of the panic `println!` gives. Every command prints through
/// [`outln!`] and [`out!`].
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        // Anything else (a full disk behind a redirect): say so once, on stderr, and stop.
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// `println!` that exits quietly on a closed pipe (see [`write_stdout`]).
#[macro_export]
macro_rules! outln {
    () => { $crate::util::write_stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::util::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that exits quietly on a closed pipe (see [`write_stdout`]).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::util::write_stdout(format_args!($($arg)*)) };
}

/// The one atomic write: the bytes go to a hidden temporary beside `path` (`.<name>.tmp`),
/// created with `mode` (and synced to disk when `durable`), then renamed over `path`, so a reader (or a crash) sees the
/// old file or the new one, never half. The temporary is created anew (`create_new`), so a
/// file planted at its name is not written through.
pub fn write_atomic_mode(
    path: &std::path::Path,
    bytes: &[u8],
    mode: u32,
    durable: bool,
) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(bytes)?;
    if durable {
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// [`write_atomic_mode`] readable by all (0644), not synced (the file can be made again), with
/// the path in the error.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    write_atomic_mode(path, bytes, 0o644, false)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Standard base64 (RFC 4648), padding optional, whitespace ignored.
pub fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return Err(format!("invalid character `{}`", c as char)),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if out.is_empty() {
        return Err("empty".to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_795_509_601_000), "2026-11-24 08:40:01 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(
            http_date(1_795_509_601_000),
            "Tue, 24 Nov 2026 08:40:01 GMT"
        );
    }

    #[test]
    fn base64_round_trips_known_vectors() {
        assert_eq!(base64_decode("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(base64_decode("Zm9vYg==").unwrap(), b"foob");
        assert_eq!(base64_decode("Zm9v YmE=").unwrap(), b"fooba");
    }

    #[test]
    fn durations_round_trip_in_words() {
        assert_eq!(human_duration(300), "300ms");
        assert_eq!(human_duration(2_000), "2s");
        assert_eq!(human_duration(1_500), "1.5s");
        assert_eq!(human_duration(300_000), "5m");
        assert_eq!(human_duration(5_400_000), "1h30m");
    }

    #[test]
    fn parses_durations_and_rejects_garbage() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(
            parse_duration("1.5s").unwrap(),
            Duration::from_millis(1_500)
        );
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5_400));
        assert!(parse_duration("5").unwrap_err().contains("no unit"));
        assert!(parse_duration("5 parsecs").is_err());
        assert_eq!(
            parse_duration("1h 30m").unwrap(),
            Duration::from_secs(5_400)
        );
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("99999999d").is_err());
    }
}
