//! Probe history for the dashboard (pure): per-minute buckets, their packed form, and the
//! figures read from them (uptime, a latency chart).
//!
//! **Tiers.** Every probe result lands in the bucket of its minute ([`Live`]); a finished
//! minute is written to the store as one row (`history_minute`). Once a UTC day is over, the
//! store packs its rows into one compressed blob per server and day (tier [`Tier::Minute`],
//! kept 31 days) and adds the day's 24 hours to the blob of its 30-day block (tier
//! [`Tier::Hour`], kept a year). Failed probes are also kept one by one, with their reason,
//! for a day (`probe_failure`), which is what an incident needs and what the buckets lose.
//! Successful probes are not kept one by one: at 1,000 sites probed every 2 s that would be
//! 86 million rows a day, and a minute's count, failures and latency answer every question
//! the dashboard asks.
//!
//! **The packed form** ([`pack`], [`unpack`]): a version byte, the slot count, then one column
//! after the other (probes and failures as u16, mean and worst latency as one byte on a
//! logarithmic scale, [`lat_code`], about 5% per step from 1 ms to a minute), compressed with
//! zstd. A healthy server's columns are nearly constant, so a day of minutes is well under a
//! kilobyte; `bench/dashboard` states the size a year of 1,000 sites reaches.

/// Milliseconds in a minute, an hour, a day.
pub const MINUTE: u64 = 60_000;
pub const HOUR: u64 = 3_600_000;
pub const DAY: u64 = 86_400_000;
/// Days in one block of the hour tier (720 hours).
pub const BLOCK_DAYS: u64 = 30;
/// How long each tier is kept.
pub const KEEP_MINUTES_DAYS: u64 = 31;
pub const KEEP_HOURS_DAYS: u64 = 366;
pub const KEEP_FAILURES_MS: u64 = DAY;

/// Which blob: a day of minutes, or a 30-day block of hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    Minute = 0,
    Hour = 1,
}

impl Tier {
    /// Slots in one blob.
    pub fn slots(self) -> usize {
        match self {
            Tier::Minute => 1440,
            Tier::Hour => (BLOCK_DAYS * 24) as usize,
        }
    }
    /// Milliseconds per slot.
    pub fn slot_ms(self) -> u64 {
        match self {
            Tier::Minute => MINUTE,
            Tier::Hour => HOUR,
        }
    }
    /// Milliseconds per blob.
    pub fn period_ms(self) -> u64 {
        self.slot_ms() * self.slots() as u64
    }
    /// The blob (period number) holding the time `at`, and the slot in it.
    pub fn locate(self, at: u64) -> (u64, usize) {
        let period = at / self.period_ms();
        let slot = ((at % self.period_ms()) / self.slot_ms()) as usize;
        (period, slot)
    }
}

/// The probes of one server in one slot (a minute or an hour).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    pub probes: u32,
    pub failures: u32,
    /// Sum and worst of the answered probes' durations (a failed probe's time is its own).
    pub latency_sum_ms: u64,
    pub latency_max_ms: u32,
}

impl Bucket {
    pub fn add(&mut self, ok: bool, took_ms: u32) {
        self.probes += 1;
        if !ok {
            self.failures += 1;
        }
        self.latency_sum_ms += u64::from(took_ms);
        self.latency_max_ms = self.latency_max_ms.max(took_ms);
    }

    pub fn merge(&mut self, other: &Bucket) {
        self.probes += other.probes;
        self.failures += other.failures;
        self.latency_sum_ms += other.latency_sum_ms;
        self.latency_max_ms = self.latency_max_ms.max(other.latency_max_ms);
    }

    pub fn mean_ms(&self) -> Option<u32> {
        (self.probes > 0).then(|| (self.latency_sum_ms / u64::from(self.probes)) as u32)
    }

    pub fn is_empty(&self) -> bool {
        self.probes == 0
    }
}

/// One finished (or, at shutdown, cut-off) minute of one server, for the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinuteRow {
    pub site: String,
    /// 0: primary, 1: standby.
    pub side: u8,
    /// The minute's start, in milliseconds since the epoch.
    pub minute: u64,
    pub bucket: Bucket,
}

/// The minute in progress of every server.
pub struct Live {
    current: Vec<[Option<(u64, Bucket)>; 2]>,
}

impl Live {
    pub fn new(sites: usize) -> Live {
        Live {
            current: vec![[None, None]; sites],
        }
    }

    /// Counts one probe; returns the minute it finished, if this probe began a new one (a
    /// late result for an earlier minute is counted in the current one).
    pub fn record(
        &mut self,
        site: usize,
        side: u8,
        at: u64,
        ok: bool,
        took_ms: u32,
    ) -> Option<(u64, Bucket)> {
        let slot = self.current.get_mut(site)?.get_mut(usize::from(side))?;
        let minute = at - at % MINUTE;
        let done = match slot {
            Some((m, _)) if minute > *m => slot.take(),
            _ => None,
        };
        let (_, bucket) = slot.get_or_insert((minute, Bucket::default()));
        bucket.add(ok, took_ms);
        done
    }

    /// Every minute in progress (the daemon is stopping), emptied.
    pub fn take_all(&mut self) -> Vec<(usize, u8, u64, Bucket)> {
        let mut out = vec![];
        for (site, sides) in self.current.iter_mut().enumerate() {
            for (side, slot) in sides.iter_mut().enumerate() {
                if let Some((minute, b)) = slot.take() {
                    out.push((site, side as u8, minute, b));
                }
            }
        }
        out
    }
}

/// A latency as one byte: `round(ln(1 + ms) × 22)`, so 0 is 0 ms and 244 is about a minute.
pub fn lat_code(ms: u32) -> u8 {
    ((f64::from(ms) + 1.0).ln() * 22.0).round().min(255.0) as u8
}

/// The latency a code stands for (the middle of its step).
pub fn lat_ms(code: u8) -> u32 {
    ((f64::from(code) / 22.0).exp() - 1.0).round().max(0.0) as u32
}

const VERSION: u8 = 1;

/// Packs one blob's slots (shorter input is padded with empty slots).
pub fn pack(slots: &[Bucket]) -> Vec<u8> {
    let n = slots.len();
    let mut raw = Vec::with_capacity(3 + n * 6);
    raw.push(VERSION);
    raw.extend_from_slice(&(n as u16).to_le_bytes());
    for b in slots {
        raw.extend_from_slice(&(b.probes.min(u32::from(u16::MAX)) as u16).to_le_bytes());
    }
    for b in slots {
        raw.extend_from_slice(&(b.failures.min(u32::from(u16::MAX)) as u16).to_le_bytes());
    }
    raw.extend(slots.iter().map(|b| lat_code(b.mean_ms().unwrap_or(0))));
    raw.extend(slots.iter().map(|b| lat_code(b.latency_max_ms)));
    zstd::bulk::compress(&raw, 3).unwrap_or_default()
}

/// Why a blob could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("a history blob is damaged ({0})")]
pub struct Damaged(&'static str);

/// The slots of a packed blob; the mean latency is the code's, so `latency_sum_ms` is that
/// times the probes.
pub fn unpack(blob: &[u8]) -> Result<Vec<Bucket>, Damaged> {
    let raw = zstd::bulk::decompress(blob, 3 + 1440 * 6).map_err(|_| Damaged("not zstd"))?;
    if raw.len() < 3 || raw[0] != VERSION {
        return Err(Damaged("unknown version"));
    }
    let n = usize::from(u16::from_le_bytes([raw[1], raw[2]]));
    if raw.len() != 3 + n * 6 {
        return Err(Damaged("wrong length"));
    }
    let col = &raw[3..];
    let u16_at = |i: usize| u32::from(u16::from_le_bytes([col[i * 2], col[i * 2 + 1]]));
    Ok((0..n)
        .map(|i| {
            let probes = u16_at(i);
            Bucket {
                probes,
                failures: u16_at(n + i),
                latency_sum_ms: u64::from(lat_ms(col[4 * n + i])) * u64::from(probes),
                latency_max_ms: lat_ms(col[5 * n + i]),
            }
        })
        .collect())
}

/// A day of minutes (1,440 slots) folded into its 24 hours.
pub fn hours_of_day(minutes: &[Bucket]) -> Vec<Bucket> {
    let mut out = vec![Bucket::default(); 24];
    for (i, b) in minutes.iter().enumerate().take(1440) {
        out[i / 60].merge(b);
    }
    out
}

/// The share of probes that passed, as a percentage; `None` without probes.
pub fn uptime(buckets: impl IntoIterator<Item = Bucket>) -> Option<f64> {
    let mut total = Bucket::default();
    for b in buckets {
        total.merge(&b);
    }
    (total.probes > 0).then(|| {
        100.0 * f64::from(total.probes - total.failures.min(total.probes)) / f64::from(total.probes)
    })
}

/// Timed buckets (slot start, bucket) folded into `points` equal steps from `from` to `to`,
/// for a chart; a step without probes is `None` (a gap, not a zero).
pub fn series(buckets: &[(u64, Bucket)], from: u64, to: u64, points: usize) -> Vec<Option<Bucket>> {
    let mut out = vec![None::<Bucket>; points];
    if to <= from || points == 0 {
        return out;
    }
    let step = (to - from).div_ceil(points as u64);
    for (at, b) in buckets {
        if *at < from || *at >= to || b.is_empty() {
            continue;
        }
        let i = (((*at - from) / step) as usize).min(points - 1);
        out[i].get_or_insert_with(Bucket::default).merge(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_minute_is_handed_over_when_the_next_one_begins() {
        let mut live = Live::new(2);
        assert_eq!(live.record(1, 0, 60_000, true, 10), None);
        assert_eq!(live.record(1, 0, 119_999, false, 30), None);
        let done = live.record(1, 0, 120_000, true, 5).unwrap();
        assert_eq!(done.0, 60_000);
        assert_eq!(
            done.1,
            Bucket {
                probes: 2,
                failures: 1,
                latency_sum_ms: 40,
                latency_max_ms: 30
            }
        );
        // A late result for an earlier minute is counted in the current one.
        assert_eq!(live.record(1, 0, 90_000, true, 5), None);
        let rest = live.take_all();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].3.probes, 2);
        assert!(live.take_all().is_empty());
        // An unknown site or side is ignored, not a panic.
        assert_eq!(live.record(7, 0, 1, true, 1), None);
        assert_eq!(live.record(0, 9, 1, true, 1), None);
    }

    #[test]
    fn locate_finds_the_blob_and_slot() {
        assert_eq!(Tier::Minute.locate(DAY * 3 + MINUTE * 61 + 5), (3, 61));
        assert_eq!(Tier::Hour.locate(DAY * 31 + HOUR * 2), (1, 26));
    }

    #[test]
    fn garbage_is_damaged_not_a_panic() {
        assert!(unpack(b"").is_err());
        assert!(unpack(b"hello").is_err());
        let wrong = zstd::bulk::compress(&[VERSION, 5, 0, 1], 3).unwrap();
        assert_eq!(unpack(&wrong), Err(Damaged("wrong length")));
    }

    #[test]
    fn a_healthy_day_packs_small() {
        let day: Vec<Bucket> = (0..1440)
            .map(|i| {
                let mut b = Bucket::default();
                for k in 0..30 {
                    b.add(true, 20 + ((i * 7 + k * 13) % 9) as u32);
                }
                b
            })
            .collect();
        let blob = pack(&day);
        assert!(blob.len() < 1500, "{} bytes", blob.len());
        let back = unpack(&blob).unwrap();
        assert_eq!(uptime(back.iter().copied()), Some(100.0));
    }

    #[test]
    fn uptime_and_series() {
        let a = Bucket {
            probes: 30,
            failures: 3,
            latency_sum_ms: 300,
            latency_max_ms: 20,
        };
        assert_eq!(uptime([a, Bucket::default()]), Some(90.0));
        assert_eq!(uptime([]), None);
        let s = series(&[(0, a), (50, a), (99, a), (100, a)], 0, 100, 2);
        assert_eq!(s[0].unwrap().probes, 30);
        assert_eq!(s[1].unwrap().probes, 60, "the end is not in the range");
        let hours = hours_of_day(&vec![a; 1440]);
        assert_eq!(hours.len(), 24);
        assert_eq!(hours[23].probes, 1800);
    }

    proptest! {
        /// Counts survive packing exactly; latencies within one step of the scale.
        #[test]
        fn packing_keeps_counts_and_latency_within_a_step(
            slots in proptest::collection::vec((0u32..2000, 0u32..2000, 0u32..60_000, 0u32..60_000), 0..1440)
        ) {
            let buckets: Vec<Bucket> = slots.iter().map(|&(p, f, mean, max)| Bucket {
                probes: p,
                failures: f.min(p),
                latency_sum_ms: u64::from(mean) * u64::from(p),
                latency_max_ms: max,
            }).collect();
            let back = unpack(&pack(&buckets)).unwrap();
            prop_assert_eq!(back.len(), buckets.len());
            for (a, b) in buckets.iter().zip(&back) {
                prop_assert_eq!(a.probes, b.probes);
                prop_assert_eq!(a.failures, b.failures);
                let (x, y) = (f64::from(a.latency_max_ms), f64::from(b.latency_max_ms));
                prop_assert!((x - y).abs() <= 1.0 + x * 0.05, "{} vs {}", x, y);
            }
        }

        #[test]
        fn lat_code_is_monotonic(a in 0u32..100_000, b in 0u32..100_000) {
            if a <= b { prop_assert!(lat_code(a) <= lat_code(b)); }
        }
    }
}
