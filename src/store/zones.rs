//! The built-in zones' serials and their journal of earlier versions (for IXFR), and the
//! zones held as a secondary of another primary (the last version taken, and when).

use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};

impl Store {
    /// The serial to publish for `zone` given its content (everything but the serial). The
    /// serial only moves when the content changes, so a restart with the same records keeps it;
    /// when it moves it becomes max(old + 1, unix seconds), staying monotonic across clock steps.
    pub fn serial_for(&self, zone: &str, content: &str, now_secs: u64) -> Result<u32, StoreError> {
        let row: Option<(i64, String)> = self
            .conn()
            .query_row(
                "SELECT serial, content FROM zone_serial WHERE zone = ?1",
                params![zone],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        let serial = match row {
            Some((serial, old)) if old == content => return Ok(serial as u32),
            Some((serial, _)) => (serial as u32).wrapping_add(1).max(now_secs as u32),
            None => (now_secs as u32).max(1),
        };
        self.conn()
            .execute(
                "INSERT INTO zone_serial (zone, serial, content) VALUES (?1, ?2, ?3)
                 ON CONFLICT(zone) DO UPDATE SET serial = excluded.serial, content = excluded.content",
                params![zone, serial as i64, content],
            )
            .map_err(|e| self.sql(e))?;
        Ok(serial)
    }

    /// Keeps the records (wire form) zone `zone` held at `serial`, and only the newest `keep`
    /// versions of it.
    pub fn save_zone_version(
        &self,
        zone: &str,
        serial: u32,
        records: &[u8],
        keep: usize,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT OR REPLACE INTO zone_version (zone, serial, records) VALUES (?1, ?2, ?3)",
            params![zone, serial as i64, records],
        )
        .map_err(|e| self.sql(e))?;
        conn.execute(
            "DELETE FROM zone_version WHERE zone = ?1 AND rowid NOT IN
             (SELECT rowid FROM zone_version WHERE zone = ?1 ORDER BY rowid DESC LIMIT ?2)",
            params![zone, keep as i64],
        )
        .map(|_| ())
        .map_err(|e| self.sql(e))
    }

    /// The kept versions of `zone`, oldest first: (serial, records in wire form).
    pub fn zone_versions(&self, zone: &str) -> Result<Vec<(u32, Vec<u8>)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT serial, records FROM zone_version WHERE zone = ?1 ORDER BY rowid")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![zone], |r| {
                Ok((r.get::<_, i64>(0)? as u32, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// Keeps the version of `zone` taken from its primary: its serial, records (wire form) and
    /// when the primary last confirmed it (ms since the epoch). One row per zone.
    pub fn save_replica(
        &self,
        zone: &str,
        serial: u32,
        records: &[u8],
        refreshed_ms: u64,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO replica_zone (zone, serial, records, refreshed_ms)
                 VALUES (?1, ?2, ?3, ?4)",
                params![zone, serial as i64, records, refreshed_ms as i64],
            )
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    /// Notes that the primary confirmed the held version of `zone` at `refreshed_ms`.
    pub fn touch_replica(&self, zone: &str, refreshed_ms: u64) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE replica_zone SET refreshed_ms = ?2 WHERE zone = ?1",
                params![zone, refreshed_ms as i64],
            )
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    /// The version of `zone` kept by [`Store::save_replica`]: (serial, records, refreshed_ms).
    pub fn replica(&self, zone: &str) -> Result<Option<(u32, Vec<u8>, u64)>, StoreError> {
        self.conn()
            .query_row(
                "SELECT serial, records, refreshed_ms FROM replica_zone WHERE zone = ?1",
                params![zone],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)? as u32,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, i64>(2)? as u64,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.sql(e))
    }
}
