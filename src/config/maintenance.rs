//! `[[sites.maintenance]]`: scheduled maintenance windows of a site's primary.
//!
//! ```toml
//! [[sites.maintenance]]
//! name = "kernel updates"        # for the log and the reasons; default maintenance[N]
//! every = "sun 03:00"            # weekly; "mon,thu 02:30"; "daily 04:00"
//! # at = "2026-12-24 02:00"      # or once, at this date and time
//! duration = "45m"
//! time_zone = "Europe/Berlin"    # an IANA name; default UTC (DST is followed)
//! drain_before = "2m"            # default: the records' TTL plus 30 s
//! ```
//!
//! The daemon drains the site `drain_before` the start (so visitors' resolvers have moved when
//! the window opens), holds it through the window, and releases it at the end
//! (`crate::maintenance`). A time that a DST change skips is taken as the time after the gap,
//! and one it repeats as the first of the two (jiff's "compatible" rule, as RFC 5545 and
//! Temporal do). [`MaintenanceWindow::occurrence`] is pure: the time is an argument.

use super::describe::toml_str;
use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMaintenance {
    pub(super) name: Option<Spanned<String>>,
    pub(super) every: Option<Spanned<String>>,
    pub(super) at: Option<Spanned<String>>,
    pub(super) duration: Option<Spanned<DurationValue>>,
    pub(super) time_zone: Option<Spanned<String>>,
    pub(super) drain_before: Option<Spanned<DurationValue>>,
}

/// When a window opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recurrence {
    Once(jiff::civil::DateTime),
    /// On these weekdays (Monday first) at this time.
    Weekly {
        days: [bool; 7],
        time: jiff::civil::Time,
    },
}

#[derive(Debug, Clone)]
pub struct MaintenanceWindow {
    pub name: String,
    pub when: Recurrence,
    pub duration: Duration,
    pub time_zone: jiff::tz::TimeZone,
    /// How long before the start the site is drained; `None`: the TTL plus 30 s.
    pub drain_before: Option<Duration>,
}

/// One occurrence of a window, in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    pub start: u64,
    pub end: u64,
}

impl MaintenanceWindow {
    /// The occurrence that has not ended by `now_ms`: the one under way, or the next one.
    /// `None` for a one-off window that is over.
    pub fn occurrence(&self, now_ms: u64) -> Option<Occurrence> {
        let dur = self.duration.as_millis() as u64;
        let at = |dt: jiff::civil::DateTime| -> Option<Occurrence> {
            let start = dt
                .to_zoned(self.time_zone.clone())
                .ok()?
                .timestamp()
                .as_millisecond();
            let start = u64::try_from(start).ok()?;
            Some(Occurrence {
                start,
                end: start + dur,
            })
        };
        match &self.when {
            Recurrence::Once(dt) => at(*dt).filter(|o| o.end > now_ms),
            Recurrence::Weekly { days, time } => {
                // From the day an occurrence still running now could have started on, the
                // first day of the pattern whose occurrence ends after now.
                let from = now_ms.saturating_sub(dur) as i64;
                let ts = jiff::Timestamp::from_millisecond(from).ok()?;
                let mut date = ts
                    .to_zoned(self.time_zone.clone())
                    .date()
                    .yesterday()
                    .ok()?;
                for _ in 0..(7 * 2 + 2 + dur / 86_400_000) {
                    let day = date.weekday().to_monday_zero_offset() as usize;
                    if days[day] {
                        if let Some(o) = at(date.to_datetime(*time)).filter(|o| o.end > now_ms) {
                            return Some(o);
                        }
                    }
                    date = date.tomorrow().ok()?;
                }
                None
            }
        }
    }
}

impl MaintenanceWindow {
    /// The window as `check-config` prints it (it reads back as the same window).
    pub(super) fn describe(&self) -> String {
        let when = match &self.when {
            Recurrence::Once(dt) => format!("at = \"{dt}\""),
            Recurrence::Weekly { days, time } => {
                let list: Vec<&str> = DAYS
                    .iter()
                    .zip(days)
                    .filter(|(_, on)| **on)
                    .map(|(d, _)| *d)
                    .collect();
                let days = match list.len() {
                    7 => "daily".to_string(),
                    _ => list.join(","),
                };
                format!("every = \"{days} {}\"", time.strftime("%H:%M"))
            }
        };
        let mut o = format!(
            "[[sites.maintenance]]\nname = {}\n{when}\nduration = \"{}\"\ntime_zone = \"{}\"\n",
            toml_str(&self.name),
            human(self.duration),
            self.time_zone.iana_name().unwrap_or("UTC")
        );
        if let Some(d) = self.drain_before {
            o.push_str(&format!("drain_before = \"{}\"\n", human(d)));
        }
        o
    }
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `"sun 03:00"`, `"mon,thu 02:30"`, `"daily 04:00"`.
fn parse_every(text: &str) -> Result<Recurrence, String> {
    let (days_text, time_text) = text.trim().split_once(' ').ok_or_else(|| {
        format!("`{text}` is not days and a time, e.g. \"sun 03:00\", \"mon,thu 02:30\" or \"daily 04:00\"")
    })?;
    let mut days = [false; 7];
    if days_text.eq_ignore_ascii_case("daily") {
        days = [true; 7];
    } else {
        for d in days_text.split(',') {
            let d = d.trim().to_ascii_lowercase();
            let i = DAYS.iter().position(|x| d.starts_with(x) && d.len() >= 3).ok_or_else(|| {
                format!("`{d}` is not a day of the week: use mon, tue, wed, thu, fri, sat, sun (or daily)")
            })?;
            days[i] = true;
        }
    }
    let time: jiff::civil::Time = time_text.trim().parse().map_err(|_| {
        format!(
            "`{}` is not a time of day: expected \"HH:MM\"",
            time_text.trim()
        )
    })?;
    Ok(Recurrence::Weekly { days, time })
}

impl Cx<'_> {
    pub(super) fn build_maintenance(
        &self,
        key: &str,
        raw: Vec<Spanned<RawMaintenance>>,
    ) -> R<Vec<MaintenanceWindow>> {
        let mut out: Vec<MaintenanceWindow> = Vec::new();
        for (i, m) in raw.into_iter().enumerate() {
            let span = m.span();
            let m = m.into_inner();
            let base = format!("{key}[{i}]");
            let name = match &m.name {
                Some(n) if n.get_ref().trim().is_empty() => {
                    return self.err(n.span(), &format!("{base}.name"), "the name is empty")
                }
                Some(n) => n.get_ref().trim().to_string(),
                None => format!("maintenance[{i}]"),
            };
            if let Some(other) = out.iter().find(|w| w.name == name) {
                let s = m.name.as_ref().map(|n| n.span()).unwrap_or(span.clone());
                return self.err(
                    s,
                    &format!("{base}.name"),
                    format!("another window is named `{}`", other.name),
                );
            }
            let when = match (&m.every, &m.at) {
                (Some(_), Some(a)) => {
                    return self.err(a.span(), &format!("{base}.at"), "give either `every` (recurring) or `at` (once), not both")
                }
                (None, None) => {
                    return self.err(span, &base, "say when: every = \"sun 03:00\" (weekly), \"daily 04:00\", or at = \"2026-12-24 02:00\" (once)")
                }
                (Some(e), None) => parse_every(e.get_ref())
                    .or_else(|why| self.err(e.span(), &format!("{base}.every"), why))?,
                (None, Some(a)) => Recurrence::Once(a.get_ref().trim().parse().or_else(|_| {
                    self.err(
                        a.span(),
                        &format!("{base}.at"),
                        format!("`{}` is not a date and time, e.g. \"2026-12-24 02:00\" (in time_zone)", a.get_ref()),
                    )
                })?),
            };
            let Some(d) = &m.duration else {
                return self.err(
                    span,
                    &format!("{base}.duration"),
                    "say how long the window is: duration = \"45m\"",
                );
            };
            let duration = self.duration(
                &m.duration,
                &format!("{base}.duration"),
                Duration::ZERO,
                Duration::from_secs(1),
            )?;
            if duration > Duration::from_secs(7 * 86_400) {
                return self.err(d.span(), &format!("{base}.duration"), "a window is at most 7 days long; for longer, drain the site (`understudy drain`)");
            }
            let time_zone = match &m.time_zone {
                None => jiff::tz::TimeZone::UTC,
                Some(z) => jiff::tz::TimeZone::get(z.get_ref().trim()).or_else(|_| {
                    self.err(
                        z.span(),
                        &format!("{base}.time_zone"),
                        format!("`{}` is not a time zone name of the IANA database, e.g. \"Europe/Berlin\" or \"UTC\"", z.get_ref()),
                    )
                })?,
            };
            let drain_before = match &m.drain_before {
                None => None,
                Some(_) => Some(self.duration(
                    &m.drain_before,
                    &format!("{base}.drain_before"),
                    Duration::ZERO,
                    Duration::ZERO,
                )?),
            };
            out.push(MaintenanceWindow {
                name,
                when,
                duration,
                time_zone,
                drain_before,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(every: &str, minutes: u64, tz: &str) -> MaintenanceWindow {
        MaintenanceWindow {
            name: "w".into(),
            when: parse_every(every).unwrap(),
            duration: Duration::from_secs(minutes * 60),
            time_zone: jiff::tz::TimeZone::get(tz).unwrap(),
            drain_before: None,
        }
    }

    fn ms(text: &str) -> u64 {
        text.parse::<jiff::Timestamp>().unwrap().as_millisecond() as u64
    }

    #[test]
    fn occurrences_follow_the_weekday_the_time_zone_and_dst() {
        let w = window("sun 03:00", 45, "Europe/Berlin");
        // Tuesday 1 December 2026: the next Sunday is the 6th, 03:00 CET = 02:00 UTC.
        let o = w.occurrence(ms("2026-12-01T12:00:00Z")).unwrap();
        assert_eq!(
            (o.start, o.end),
            (ms("2026-12-06T02:00:00Z"), ms("2026-12-06T02:45:00Z"))
        );
        // Under way: the same occurrence until it ends, then the next week's.
        assert_eq!(w.occurrence(ms("2026-12-06T02:30:00Z")), Some(o));
        assert_eq!(
            w.occurrence(ms("2026-12-06T02:45:00Z")).unwrap().start,
            ms("2026-12-13T02:00:00Z")
        );
        // Summer time: 03:00 CEST = 01:00 UTC.
        assert_eq!(
            w.occurrence(ms("2026-07-01T00:00:00Z")).unwrap().start,
            ms("2026-07-05T01:00:00Z")
        );
        // The spring-forward Sunday (29 March 2026): 02:30 does not exist; taken after the gap.
        let gap = window("sun 02:30", 30, "Europe/Berlin");
        assert_eq!(
            gap.occurrence(ms("2026-03-28T00:00:00Z")).unwrap().start,
            ms("2026-03-29T01:30:00Z")
        );
        // Several days, and daily.
        let two = window("mon,thu 02:30", 30, "UTC");
        assert_eq!(
            two.occurrence(ms("2026-12-01T12:00:00Z")).unwrap().start,
            ms("2026-12-03T02:30:00Z")
        );
        let daily = window("daily 04:00", 60, "UTC");
        assert_eq!(
            daily.occurrence(ms("2026-12-01T04:30:00Z")).unwrap().start,
            ms("2026-12-01T04:00:00Z")
        );
        assert_eq!(
            daily.occurrence(ms("2026-12-01T05:00:00Z")).unwrap().start,
            ms("2026-12-02T04:00:00Z")
        );
        // A window longer than the gap to the next day's: the one under way comes first.
        let long = window("daily 23:00", 120, "UTC");
        assert_eq!(
            long.occurrence(ms("2026-12-02T00:30:00Z")).unwrap().start,
            ms("2026-12-01T23:00:00Z")
        );
        // Once, then never again.
        let once = MaintenanceWindow {
            when: Recurrence::Once("2026-12-24 02:00".parse().unwrap()),
            ..window("daily 00:00", 30, "UTC")
        };
        assert_eq!(
            once.occurrence(ms("2026-12-01T00:00:00Z")).unwrap().start,
            ms("2026-12-24T02:00:00Z")
        );
        assert_eq!(once.occurrence(ms("2026-12-24T02:30:00Z")), None);
    }

    #[test]
    fn bad_recurrences_say_what_is_expected() {
        assert!(parse_every("sunday")
            .unwrap_err()
            .contains("days and a time"));
        assert!(parse_every("funday 03:00")
            .unwrap_err()
            .contains("not a day of the week"));
        assert!(parse_every("sun 25:00")
            .unwrap_err()
            .contains("not a time of day"));
        assert!(parse_every("Sunday 03:00").is_ok());
    }
}
