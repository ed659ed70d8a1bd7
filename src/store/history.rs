//! Probe history (the tiers and their packed form: [`crate::history`]): finished minutes are
//! appended as rows, a finished UTC day is packed into blobs by [`Store::pack_history`], and the
//! dashboard reads minutes or hours over a range. A minute written twice (a restart inside it)
//! is merged, not replaced.
//!
//! The blobs live in a rowid table (a blob of a kilobyte or two fits in a leaf page there; in
//! a `WITHOUT ROWID` table anything over ~1 KB spills to an overflow page of its own, which
//! tripled the size), with an index on (tier, period) so the retention deletes do not scan.
//! Packing takes one short transaction per server and day, so the controller's own writes
//! (the same connection) wait milliseconds, not the whole pass.

use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};
use crate::history::{self, Bucket, MinuteRow, Tier, DAY};

/// The history's tables: finished minutes as rows, packed blobs, failed probes.
pub(super) const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS history_minute (
         site TEXT NOT NULL,
         side INTEGER NOT NULL,
         minute INTEGER NOT NULL,
         probes INTEGER NOT NULL,
         failures INTEGER NOT NULL,
         latency_sum INTEGER NOT NULL,
         latency_max INTEGER NOT NULL,
         PRIMARY KEY (site, side, minute)
     ) WITHOUT ROWID;
     CREATE INDEX IF NOT EXISTS history_minute_age ON history_minute (minute);
     CREATE TABLE IF NOT EXISTS history_packed (
         id INTEGER PRIMARY KEY,
         site TEXT NOT NULL,
         side INTEGER NOT NULL,
         tier INTEGER NOT NULL,
         period INTEGER NOT NULL,
         data BLOB NOT NULL
     );
     CREATE UNIQUE INDEX IF NOT EXISTS history_packed_key ON history_packed (site, side, tier, period);
     CREATE INDEX IF NOT EXISTS history_packed_age ON history_packed (tier, period);
     CREATE TABLE IF NOT EXISTS probe_failure (
         site TEXT NOT NULL,
         side INTEGER NOT NULL,
         at INTEGER NOT NULL,
         detail TEXT NOT NULL
     );
     CREATE INDEX IF NOT EXISTS probe_failure_site_at ON probe_failure (site, at);
     CREATE INDEX IF NOT EXISTS probe_failure_age ON probe_failure (at);";

/// What one packing pass did, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Packed {
    pub days: usize,
    pub rows: usize,
}

impl Store {
    /// Appends finished minutes and failed probes (`site`, side, when, why) in one transaction.
    pub fn append_history(
        &self,
        minutes: &[MinuteRow],
        failures: &[(String, u8, u64, String)],
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql(e))?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO history_minute (site, side, minute, probes, failures, latency_sum, latency_max)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT(site, side, minute) DO UPDATE SET
                       probes = probes + excluded.probes,
                       failures = failures + excluded.failures,
                       latency_sum = latency_sum + excluded.latency_sum,
                       latency_max = max(latency_max, excluded.latency_max)",
                )
                .map_err(|e| self.sql(e))?;
            for m in minutes {
                put.execute(params![
                    m.site,
                    m.side,
                    m.minute as i64,
                    m.bucket.probes,
                    m.bucket.failures,
                    m.bucket.latency_sum_ms as i64,
                    m.bucket.latency_max_ms
                ])
                .map_err(|e| self.sql(e))?;
            }
            let mut fail = tx
                .prepare_cached(
                    "INSERT INTO probe_failure (site, side, at, detail) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(|e| self.sql(e))?;
            for (site, side, at, detail) in failures {
                fail.execute(params![site, side, *at as i64, detail])
                    .map_err(|e| self.sql(e))?;
            }
        }
        tx.commit().map_err(|e| self.sql(e))
    }

    /// Packs every day before the one holding `now` into its minute blob and its hours into
    /// their block, deletes what was packed, and drops what is past its keeping time. One
    /// transaction per server and day: a crash leaves either its rows or its blobs, never
    /// neither and never both.
    pub fn pack_history(&self, now: u64) -> Result<Packed, StoreError> {
        let today = now / DAY;
        let sql = |e| self.sql(e);
        let mut done = Packed::default();
        let days: Vec<(String, u8, u64)> = {
            let conn = self.conn();
            let mut q = conn
                .prepare(
                    "SELECT DISTINCT site, side, minute / ?2 FROM history_minute WHERE minute < ?1",
                )
                .map_err(sql)?;
            let rows = q
                .query_map(params![(today * DAY) as i64, DAY as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
                })
                .map_err(sql)?;
            rows.collect::<Result<_, _>>().map_err(sql)?
        };
        for (site, side, day) in days {
            let mut conn = self.conn();
            let tx = conn.transaction().map_err(sql)?;
            let (start, end) = (day * DAY, (day + 1) * DAY);
            let mut minutes = blob(&tx, &site, side, Tier::Minute, day)
                .map_err(sql)?
                .unwrap_or_else(|| vec![Bucket::default(); Tier::Minute.slots()]);
            let rows = live_rows(&tx, &site, side, start, end).map_err(sql)?;
            done.rows += rows.len();
            for (at, b) in rows {
                minutes[((at - start) / history::MINUTE) as usize].merge(&b);
            }
            put_blob(
                &tx,
                &site,
                side,
                Tier::Minute,
                day,
                &history::pack(&minutes),
            )
            .map_err(sql)?;
            let (block, slot) = Tier::Hour.locate(start);
            let mut hours = blob(&tx, &site, side, Tier::Hour, block)
                .map_err(sql)?
                .unwrap_or_else(|| vec![Bucket::default(); Tier::Hour.slots()]);
            hours[slot..slot + 24].copy_from_slice(&history::hours_of_day(&minutes));
            put_blob(&tx, &site, side, Tier::Hour, block, &history::pack(&hours)).map_err(sql)?;
            tx.execute(
                "DELETE FROM history_minute WHERE site = ?1 AND side = ?2 AND minute >= ?3 AND minute < ?4",
                params![site, side, start as i64, end as i64],
            )
            .map_err(sql)?;
            tx.commit().map_err(sql)?;
            done.days += 1;
        }
        let minutes_from = today.saturating_sub(history::KEEP_MINUTES_DAYS);
        let hours_from = Tier::Hour
            .locate(now.saturating_sub(history::KEEP_HOURS_DAYS * DAY))
            .0;
        let conn = self.conn();
        for (tier, from) in [(Tier::Minute, minutes_from), (Tier::Hour, hours_from)] {
            conn.execute(
                "DELETE FROM history_packed WHERE tier = ?1 AND period < ?2",
                params![tier as i64, from as i64],
            )
            .map_err(sql)?;
        }
        conn.execute(
            "DELETE FROM probe_failure WHERE at < ?1",
            params![now.saturating_sub(history::KEEP_FAILURES_MS) as i64],
        )
        .map_err(sql)?;
        Ok(done)
    }

    /// Stores packed blobs as they are, in one transaction (the benchmark's synthetic year):
    /// (site, side, tier, period, blob).
    pub fn put_history_blobs(
        &self,
        blobs: &[(String, u8, Tier, u64, Vec<u8>)],
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql(e))?;
        for (site, side, tier, period, data) in blobs {
            put_blob(&tx, site, *side, *tier, *period, data).map_err(|e| self.sql(e))?;
        }
        tx.commit().map_err(|e| self.sql(e))
    }

    /// The buckets of `tier`'s slots from `from` to `to` (slot start, bucket), from the blobs
    /// and the rows not packed yet (folded into hours for [`Tier::Hour`]). Empty slots are left
    /// out; a damaged blob is logged and skipped.
    pub fn history(
        &self,
        site: &str,
        side: u8,
        tier: Tier,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, Bucket)>, StoreError> {
        let conn = self.conn();
        let sql = |e| self.sql(e);
        let mut out: Vec<(u64, Bucket)> = vec![];
        let (first, _) = tier.locate(from);
        let (last, _) = tier.locate(to);
        let mut q = conn
            .prepare_cached(
                "SELECT period, data FROM history_packed
                 WHERE site = ?1 AND side = ?2 AND tier = ?3 AND period >= ?4 AND period <= ?5
                 ORDER BY period",
            )
            .map_err(sql)?;
        let blobs = q
            .query_map(
                params![site, side, tier as i64, first as i64, last as i64],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?)),
            )
            .map_err(sql)?;
        for row in blobs {
            let (period, data) = row.map_err(sql)?;
            match history::unpack(&data) {
                Ok(slots) => {
                    let start = period * tier.period_ms();
                    out.extend(slots.into_iter().enumerate().filter_map(|(i, b)| {
                        let at = start + i as u64 * tier.slot_ms();
                        (!b.is_empty() && at >= from && at < to).then_some((at, b))
                    }))
                }
                Err(e) => tracing::warn!(site, side, period, "{e}; that period is left out"),
            }
        }
        for (at, b) in live_rows(&conn, site, side, from, to).map_err(sql)? {
            let slot = at - at % tier.slot_ms();
            match out.last_mut() {
                Some((s, acc)) if *s == slot => acc.merge(&b),
                _ => out.push((slot, b)),
            }
        }
        Ok(out)
    }

    /// The newest failed probes of a site since `since` (side, when, why), newest first.
    pub fn probe_failures(
        &self,
        site: &str,
        since: u64,
        limit: usize,
    ) -> Result<Vec<(u8, u64, String)>, StoreError> {
        let conn = self.conn();
        let mut q = conn
            .prepare_cached(
                "SELECT side, at, detail FROM probe_failure WHERE site = ?1 AND at >= ?2
                 ORDER BY at DESC LIMIT ?3",
            )
            .map_err(|e| self.sql(e))?;
        let rows = q
            .query_map(params![site, since as i64, limit as i64], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?))
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }
}

/// Packs finished days at start and every hour after, on the blocking pool (the daemon's
/// task; a failure is logged and tried again the next hour).
pub async fn pack_history_hourly(store: Store, shutdown: tokio_util::sync::CancellationToken) {
    loop {
        let s = store.clone();
        let started = std::time::Instant::now();
        match tokio::task::spawn_blocking(move || s.pack_history(crate::util::now_millis())).await {
            Ok(Ok(p)) if p.days > 0 => tracing::info!(
                days = p.days,
                rows = p.rows,
                "probe history packed in {} ms",
                started.elapsed().as_millis()
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("packing the probe history: {e}"),
            Err(e) => tracing::warn!("packing the probe history: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(3_600)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

fn blob(
    conn: &rusqlite::Connection,
    site: &str,
    side: u8,
    tier: Tier,
    period: u64,
) -> rusqlite::Result<Option<Vec<Bucket>>> {
    let data: Option<Vec<u8>> = conn
        .query_row(
            "SELECT data FROM history_packed WHERE site = ?1 AND side = ?2 AND tier = ?3 AND period = ?4",
            params![site, side, tier as i64, period as i64],
            |r| r.get(0),
        )
        .optional()?;
    Ok(data.and_then(|d| match history::unpack(&d) {
        Ok(slots) if slots.len() == tier.slots() => Some(slots),
        // A damaged blob is replaced by what is packed now rather than stopping every pass.
        _ => {
            tracing::warn!(site, side, period, "a damaged history blob is replaced");
            None
        }
    }))
}

fn put_blob(
    conn: &rusqlite::Connection,
    site: &str,
    side: u8,
    tier: Tier,
    period: u64,
    data: &[u8],
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO history_packed (site, side, tier, period, data) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![site, side, tier as i64, period as i64, data],
    )
    .map(|_| ())
}

/// The rows not packed yet from `from` to `to`, oldest first.
fn live_rows(
    conn: &rusqlite::Connection,
    site: &str,
    side: u8,
    from: u64,
    to: u64,
) -> rusqlite::Result<Vec<(u64, Bucket)>> {
    let mut q = conn.prepare_cached(
        "SELECT minute, probes, failures, latency_sum, latency_max FROM history_minute
         WHERE site = ?1 AND side = ?2 AND minute >= ?3 AND minute < ?4 ORDER BY minute",
    )?;
    let rows = q.query_map(params![site, side, from as i64, to as i64], |r| {
        Ok((
            r.get::<_, i64>(0)? as u64,
            Bucket {
                probes: r.get(1)?,
                failures: r.get(2)?,
                latency_sum_ms: r.get::<_, i64>(3)? as u64,
                latency_max_ms: r.get(4)?,
            },
        ))
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{HOUR, MINUTE};

    fn row(site: &str, side: u8, minute: u64, ok: bool) -> MinuteRow {
        let mut bucket = Bucket::default();
        bucket.add(ok, 12);
        MinuteRow {
            site: site.into(),
            side,
            minute,
            bucket,
        }
    }

    /// Rows become blobs once their day is over, reads see the same figures before and after,
    /// and a minute written twice is merged.
    #[test]
    fn packing_keeps_what_the_dashboard_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let day0 = 20_000 * DAY;
        let rows: Vec<MinuteRow> = (0..1440)
            .map(|m| row("a", 0, day0 + m * MINUTE, m % 10 != 0))
            .collect();
        store.append_history(&rows, &[]).unwrap();
        store
            .append_history(
                &[row("a", 0, day0, true)],
                &[("a".into(), 0, day0, "refused".into())],
            )
            .unwrap();
        let before = store
            .history("a", 0, Tier::Minute, day0, day0 + DAY)
            .unwrap();
        assert_eq!(before.len(), 1440);
        assert_eq!(before[0].1.probes, 2);
        let hours_before = store.history("a", 0, Tier::Hour, day0, day0 + DAY).unwrap();
        assert_eq!(hours_before.len(), 24);
        assert_eq!(store.probe_failures("a", 0, 10).unwrap().len(), 1);
        // Not packed while the day is today.
        assert_eq!(store.pack_history(day0 + HOUR).unwrap().days, 0);
        let packed = store.pack_history(day0 + DAY + HOUR).unwrap();
        assert_eq!(
            packed,
            Packed {
                days: 1,
                rows: 1440
            }
        );
        let after = store
            .history("a", 0, Tier::Minute, day0, day0 + DAY)
            .unwrap();
        assert_eq!(after.len(), 1440);
        assert_eq!(
            history::uptime(before.iter().map(|b| b.1)),
            history::uptime(after.iter().map(|b| b.1))
        );
        let hours = store.history("a", 0, Tier::Hour, day0, day0 + DAY).unwrap();
        assert_eq!(hours.len(), 24);
        assert_eq!(hours[0].1.probes, 61);
        // The failure was kept a day, then dropped.
        assert!(store.probe_failures("a", 0, 10).unwrap().is_empty());
        // Minutes go after 31 days; hours stay the year.
        store.pack_history(day0 + 40 * DAY).unwrap();
        assert!(store
            .history("a", 0, Tier::Minute, day0, day0 + DAY)
            .unwrap()
            .is_empty());
        assert_eq!(
            store
                .history("a", 0, Tier::Hour, day0, day0 + DAY)
                .unwrap()
                .len(),
            24
        );
        store.pack_history(day0 + 400 * DAY).unwrap();
        assert!(store
            .history("a", 0, Tier::Hour, day0, day0 + DAY)
            .unwrap()
            .is_empty());
        // Another site's and side's rows are their own.
        assert!(store
            .history("a", 1, Tier::Hour, 0, u64::MAX / 2)
            .unwrap()
            .is_empty());
    }
}
