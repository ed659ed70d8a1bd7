//! Persistent state in SQLite (`<data_dir>/understudy.db`): the current decision state of every
//! site, the zone serials, the agreed public addresses, the crawl reports, an append-only event
//! log, and how far each notification channel has delivered that log (`notify_cursor`: the log
//! is the channels' outbox, so nothing is lost across a restart); daily backups beside it.
//!
//! Owns the schema and every SQL statement. A restart resumes from here (design.md invariant 7):
//! a site that was failed over is restored failed over, so the first answer after a restart is
//! the same as the last one before it. It never decides anything; it stores what it is given.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::decide::SiteState;

pub const DB_FILE: &str = "understudy.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // `cause` is part of the message rather than an error source, so a chain printed with
    // `{:#}` says it once.
    #[error("state database {path}: {cause}")]
    Sqlite {
        path: PathBuf,
        cause: rusqlite::Error,
    },
    #[error(
        "state database {path}: stored state of site `{site}` is unreadable ({why}); remove the row or the file to start that site afresh"
    )]
    Corrupt {
        path: PathBuf,
        site: String,
        why: String,
    },
    #[error("cannot create the data directory {path}: {cause}")]
    DataDir {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// The database is missing or empty, but the data directory has been used: starting afresh
    /// would forget every decision (a failed-over site would be published on its dead primary).
    #[error(
        "state database {path} is {what}, but {dir} has been used before (it holds {traces}); starting afresh would forget \
         where every site's records point, and a site that was failed over would be published on its primary. {hint}"
    )]
    Missing {
        path: PathBuf,
        what: &'static str,
        dir: PathBuf,
        traces: String,
        hint: String,
    },
    #[error("state database {path} is damaged ({why}); nothing was changed. {hint}")]
    Damaged {
        path: PathBuf,
        why: String,
        hint: String,
    },
}

/// What a start does with a state database that is missing, empty or damaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IfUnusable {
    /// Refuse to start, and say how to restore or reset (the default).
    Refuse,
    /// Start every site afresh (`understudy run --reset-state`): a damaged file is moved aside
    /// as `understudy.db.damaged-<unix ms>`, never deleted.
    Reset,
}

/// Daily backups kept in `<data_dir>/backups/`.
pub const BACKUPS_KEPT: usize = 7;
pub const BACKUP_DIR: &str = "backups";

pub use crate::events::EventKind;

/// One row of the event log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    pub id: i64,
    pub site: String,
    pub at: u64,
    /// An [`EventKind`] in words ("failed-over", "transition", ...), as stored (rows older
    /// than a kind keep the word they were written with).
    pub kind: String,
    pub from_phase: Option<String>,
    pub to_phase: Option<String>,
    pub reason: String,
    pub records_before: Option<String>,
    pub records_after: Option<String>,
}

/// A new event to append.
#[derive(Clone, Debug, Default)]
pub struct NewEvent<'a> {
    pub site: &'a str,
    pub at: u64,
    pub kind: EventKind,
    pub from_phase: Option<&'a str>,
    pub to_phase: Option<&'a str>,
    pub reason: &'a str,
    pub records_before: Option<&'a str>,
    pub records_after: Option<&'a str>,
}

/// A handle to the state database. The daemon opens it once ([`Store::open_at_start`]) and
/// hands clones to whoever needs it (controller, built-in zones, crawl scheduler): every clone
/// shares one connection, and each statement or transaction holds it for its own length only.
/// A crawl report as the `crawls` table keeps it: found by site, time and outcome, stored
/// whole as JSON. The crawler's report implements it ([`crate::mirror::crawl::Report`]); the
/// store does not need to know its shape.
pub trait CrawlRecord: Serialize + serde::de::DeserializeOwned {
    fn site(&self) -> &str;
    fn started_at(&self) -> u64;
    fn outcome(&self) -> &str;
}

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

/// What understudy itself leaves in a data directory besides the database: if any of it is
/// there, the directory has been used, and a missing database was lost rather than never made.
const TRACES: &[&str] = &[
    "understudy.db-wal",
    "understudy.db-shm",
    "daemon.json",
    "mirror",
    "certs",
    "acme",
    BACKUP_DIR,
];

const SCHEMA: &str = "PRAGMA journal_mode = WAL;
     PRAGMA synchronous = FULL;
     CREATE TABLE IF NOT EXISTS site_state (
         site TEXT PRIMARY KEY,
         state TEXT NOT NULL,
         updated_at INTEGER NOT NULL
     );
     CREATE TABLE IF NOT EXISTS zone_serial (
         zone TEXT PRIMARY KEY,
         serial INTEGER NOT NULL,
         content TEXT NOT NULL
     );
     CREATE TABLE IF NOT EXISTS zone_version (
         zone TEXT NOT NULL,
         serial INTEGER NOT NULL,
         records BLOB NOT NULL,
         PRIMARY KEY (zone, serial)
     );
     CREATE TABLE IF NOT EXISTS replica_zone (
         zone TEXT PRIMARY KEY,
         serial INTEGER NOT NULL,
         records BLOB NOT NULL,
         refreshed_ms INTEGER NOT NULL
     );
     CREATE TABLE IF NOT EXISTS events (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         site TEXT NOT NULL,
         at INTEGER NOT NULL,
         kind TEXT NOT NULL,
         from_phase TEXT,
         to_phase TEXT,
         reason TEXT NOT NULL,
         records_before TEXT,
         records_after TEXT
     );
     CREATE INDEX IF NOT EXISTS events_site_at ON events (site, at);
     CREATE TABLE IF NOT EXISTS notify_cursor (
         channel TEXT PRIMARY KEY,
         last_id INTEGER NOT NULL,
         updated_at INTEGER NOT NULL
     );
     CREATE TABLE IF NOT EXISTS public_ip (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         family TEXT NOT NULL,
         addr TEXT NOT NULL,
         at INTEGER NOT NULL,
         sources TEXT NOT NULL
     );
     CREATE TABLE IF NOT EXISTS crawls (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         site TEXT NOT NULL,
         started_at INTEGER NOT NULL,
         outcome TEXT NOT NULL,
         report TEXT NOT NULL
     );
     CREATE INDEX IF NOT EXISTS crawls_site ON crawls (site, started_at);";

impl Store {
    /// Opens (creating if needed) the database in `data_dir`. A database that is missing or
    /// empty in a directory that has been used is an error ([`StoreError::Missing`]).
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|cause| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            cause,
        })?;
        let path = data_dir.join(DB_FILE);
        refuse_if_lost(data_dir, &path)?;
        Self::open_path(&path)
    }

    /// Opens the database for a daemon start: like [`Store::open`], and also checks the whole
    /// file (`PRAGMA quick_check`) before anything is served from it. With
    /// [`IfUnusable::Reset`] a missing, empty or damaged database starts afresh instead (a
    /// damaged file is moved aside, not deleted); the returned note says what was done.
    pub fn open_at_start(
        data_dir: &Path,
        if_unusable: IfUnusable,
    ) -> Result<(Self, Option<String>), StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|cause| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            cause,
        })?;
        let path = data_dir.join(DB_FILE);
        let mut note = None;
        if let Err(e) = refuse_if_lost(data_dir, &path) {
            match if_unusable {
                IfUnusable::Refuse => return Err(e),
                IfUnusable::Reset => {
                    note = Some(format!(
                        "--reset-state: {} was missing or empty; every site starts afresh",
                        path.display()
                    ))
                }
            }
        }
        let opened = Self::open_path(&path).and_then(|s| s.quick_check().map(|()| s));
        let damage = match &opened {
            Err(StoreError::Damaged { why, .. }) => Some(why.clone()),
            Err(StoreError::Sqlite { cause, .. }) if is_damage(cause) => Some(cause.to_string()),
            _ => None,
        };
        match (opened, damage, if_unusable) {
            (Ok(s), _, _) => Ok((s, note)),
            (Err(_), Some(why), IfUnusable::Refuse) => Err(StoreError::Damaged {
                path,
                why,
                hint: restore_hint(data_dir),
            }),
            (Err(_), Some(why), IfUnusable::Reset) => {
                let aside =
                    path.with_file_name(format!("{DB_FILE}.damaged-{}", crate::util::now_millis()));
                let moved = |from: &Path, to: &Path| {
                    std::fs::rename(from, to).map_err(|cause| StoreError::DataDir {
                        path: to.to_path_buf(),
                        cause,
                    })
                };
                moved(&path, &aside)?;
                for suffix in ["-wal", "-shm"] {
                    let side = path.with_file_name(format!("{DB_FILE}{suffix}"));
                    if side.exists() {
                        moved(
                            &side,
                            &aside.with_file_name(format!("{}{suffix}", aside.display())),
                        )?;
                    }
                }
                let s = Self::open_path(&path)?;
                let note = format!(
                    "--reset-state: {} was damaged ({why}); moved aside to {}; every site starts afresh",
                    path.display(),
                    aside.display()
                );
                Ok((s, Some(note)))
            }
            (Err(e), None, _) => Err(e),
        }
    }

    fn open_path(path: &Path) -> Result<Self, StoreError> {
        let sql = |cause| StoreError::Sqlite {
            path: path.to_path_buf(),
            cause,
        };
        let conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        conn.execute_batch(history::SCHEMA).map_err(sql)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
        })
    }

    /// `PRAGMA quick_check`: every page and index readable and consistent.
    fn quick_check(&self) -> Result<(), StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("PRAGMA quick_check")
            .map_err(|e| self.sql(e))?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.sql(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.sql(e))?;
        if rows.len() == 1 && rows[0] == "ok" {
            return Ok(());
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        Err(StoreError::Damaged {
            path: self.path.clone(),
            why: rows.join("; "),
            hint: restore_hint(dir),
        })
    }

    /// Copies the database, consistently while it is in use (SQLite's online backup), to
    /// `<data_dir>/backups/understudy-YYYY-MM-DD.db` (today's is replaced) and keeps the newest
    /// [`BACKUPS_KEPT`]. Opens its own connection, so it can run beside the controller's.
    pub fn backup(data_dir: &Path, now: u64) -> Result<PathBuf, StoreError> {
        let path = data_dir.join(DB_FILE);
        let dir = data_dir.join(BACKUP_DIR);
        std::fs::create_dir_all(&dir).map_err(|cause| StoreError::DataDir {
            path: dir.clone(),
            cause,
        })?;
        let sql = |cause| StoreError::Sqlite {
            path: path.clone(),
            cause,
        };
        let src = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(sql)?;
        let day = crate::util::utc_date(now);
        let target = dir.join(format!("understudy-{day}.db"));
        let tmp = dir.join(format!(".understudy-{day}.db.tmp"));
        let _ = std::fs::remove_file(&tmp);
        {
            let mut dst = Connection::open(&tmp).map_err(sql)?;
            let b = rusqlite::backup::Backup::new(&src, &mut dst).map_err(sql)?;
            b.run_to_completion(256, std::time::Duration::from_millis(5), None)
                .map_err(sql)?;
        }
        std::fs::rename(&tmp, &target).map_err(|cause| StoreError::DataDir {
            path: target.clone(),
            cause,
        })?;
        let mut all = backups(data_dir);
        while all.len() > BACKUPS_KEPT {
            let _ = std::fs::remove_file(all.remove(0));
        }
        Ok(target)
    }

    /// Opens an existing database read-only (for `status` while the daemon is not running).
    pub fn open_read_only(data_dir: &Path) -> Result<Option<Self>, StoreError> {
        let path = data_dir.join(DB_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|cause| StoreError::Sqlite {
            path: path.clone(),
            cause,
        })?;
        Ok(Some(Store {
            conn: Arc::new(Mutex::new(conn)),
            path,
        }))
    }

    /// The connection, for one statement or transaction. A panic while it was held cannot have
    /// left a transaction open (rusqlite rolls back on drop), so a poisoned lock is taken as is.
    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sql(&self, cause: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            cause,
        }
    }

    pub fn load_state(&self, site: &str) -> Result<Option<SiteState>, StoreError> {
        let text: Option<String> = self
            .conn()
            .query_row(
                "SELECT state FROM site_state WHERE site = ?1",
                params![site],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        match text {
            None => Ok(None),
            Some(t) => serde_json::from_str(&t)
                .map(Some)
                .map_err(|e| StoreError::Corrupt {
                    path: self.path.clone(),
                    site: site.to_string(),
                    why: e.to_string(),
                }),
        }
    }

    /// Saves a site's state and, in the same transaction, the events that explain it.
    pub fn save(
        &self,
        site: &str,
        state: &SiteState,
        now: u64,
        events: &[NewEvent<'_>],
    ) -> Result<(), StoreError> {
        self.save_many(&[(site, state, now, events.to_vec())])
    }

    /// [`Store::save`] for many sites in one transaction (one sync to disk for a whole batch
    /// of decisions, `crate::control`).
    pub fn save_many(
        &self,
        saves: &[(&str, &SiteState, u64, Vec<NewEvent<'_>>)],
    ) -> Result<(), StoreError> {
        let sql = |cause| StoreError::Sqlite {
            path: self.path.clone(),
            cause,
        };
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql)?;
        for (site, state, now, events) in saves {
            let json = serde_json::to_string(state).expect("state serializes");
            tx.execute(
                "INSERT INTO site_state (site, state, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(site) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                params![site, json, *now as i64],
            )
            .map_err(sql)?;
            for ev in events {
                insert_event(&tx, ev).map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// Appends one event; returns its id.
    pub fn append_event(&self, ev: &NewEvent<'_>) -> Result<i64, StoreError> {
        let conn = self.conn();
        insert_event(&conn, ev)
            .map(|_| conn.last_insert_rowid())
            .map_err(|e| self.sql(e))
    }

    /// The newest `limit` events of a site (or of all sites), newest first.
    pub fn events(&self, site: Option<&str>, limit: usize) -> Result<Vec<Event>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE (?1 IS NULL OR site = ?1)
                 ORDER BY id DESC LIMIT ?2"
            ))
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![site, limit as i64], event_row)
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.sql(e))
    }

    /// A page of the log for the API, newest first: events older than id `before` (all when
    /// `None`), of one site and one kind when given.
    pub fn events_page(
        &self,
        site: Option<&str>,
        kind: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE (?1 IS NULL OR site = ?1)
                 AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR id < ?3)
                 ORDER BY id DESC LIMIT ?4"
            ))
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![site, kind, before, limit as i64], event_row)
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.sql(e))
    }

    /// At most `limit` events after the one with id `after`, oldest first: what a notification
    /// channel has yet to deliver.
    pub fn events_after(&self, after: i64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE id > ?1 ORDER BY id LIMIT ?2"
            ))
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![after, limit as i64], event_row)
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.sql(e))
    }

    /// The id of the newest event; 0 for an empty log.
    pub fn last_event_id(&self) -> Result<i64, StoreError> {
        self.conn()
            .query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0))
            .map_err(|e| self.sql(e))
    }

    /// The id of the last event notification channel `channel` is done with (delivered, or
    /// dropped on purpose); `None` for a channel never seen.
    pub fn notify_cursor(&self, channel: &str) -> Result<Option<i64>, StoreError> {
        self.conn()
            .query_row(
                "SELECT last_id FROM notify_cursor WHERE channel = ?1",
                params![channel],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// Records that `channel` is done with every event up to `id`.
    pub fn set_notify_cursor(&self, channel: &str, id: i64, now: u64) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO notify_cursor (channel, last_id, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(channel) DO UPDATE SET last_id = excluded.last_id,
                 updated_at = excluded.updated_at",
                params![channel, id, now as i64],
            )
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }
}

impl Store {
    /// Appends an agreed public address to the history (the newest row per family is current).
    pub fn save_public_ip(
        &self,
        family: crate::net::Family,
        addr: std::net::IpAddr,
        at: u64,
        sources: &str,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO public_ip (family, addr, at, sources) VALUES (?1, ?2, ?3, ?4)",
                params![family.to_string(), addr.to_string(), at as i64, sources],
            )
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    /// The current public address of each family, and when it was agreed.
    pub fn public_ips(
        &self,
    ) -> Result<std::collections::BTreeMap<crate::net::Family, (std::net::IpAddr, u64)>, StoreError>
    {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT family, addr, at FROM public_ip WHERE id IN (SELECT MAX(id) FROM public_ip GROUP BY family)")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = std::collections::BTreeMap::new();
        for row in rows {
            let (fam, addr, at) = row.map_err(|e| self.sql(e))?;
            let family = if fam == "IPv6" {
                crate::net::Family::Ipv6
            } else {
                crate::net::Family::Ipv4
            };
            // A row that does not parse (hand-edited database) is skipped, not fatal.
            if let Ok(addr) = addr.parse() {
                out.insert(family, (addr, at as u64));
            }
        }
        Ok(out)
    }

    /// Newest first: (family, address, when, which sources agreed).
    pub fn public_ip_history(
        &self,
        limit: usize,
    ) -> Result<Vec<(crate::net::Family, std::net::IpAddr, u64, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT family, addr, at, sources FROM public_ip ORDER BY id DESC LIMIT ?1")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![limit as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = vec![];
        for row in rows {
            let (fam, addr, at, sources) = row.map_err(|e| self.sql(e))?;
            let family = if fam == "IPv6" {
                crate::net::Family::Ipv6
            } else {
                crate::net::Family::Ipv4
            };
            // A row that does not parse (hand-edited database) is skipped, not fatal.
            if let Ok(addr) = addr.parse() {
                out.push((family, addr, at as u64, sources));
            }
        }
        Ok(out)
    }
}

const EVENT_COLUMNS: &str =
    "id, site, at, kind, from_phase, to_phase, reason, records_before, records_after";

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        id: r.get(0)?,
        site: r.get(1)?,
        at: r.get::<_, i64>(2)? as u64,
        kind: r.get(3)?,
        from_phase: r.get(4)?,
        to_phase: r.get(5)?,
        reason: r.get(6)?,
        records_before: r.get(7)?,
        records_after: r.get(8)?,
    })
}

fn insert_event(conn: &Connection, ev: &NewEvent<'_>) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT INTO events (site, at, kind, from_phase, to_phase, reason, records_before, records_after)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![ev.site, ev.at as i64, ev.kind.as_str(), ev.from_phase, ev.to_phase, ev.reason, ev.records_before, ev.records_after],
    )
}

impl Store {
    /// Records one crawl (issue 5): what it fetched, and whether it was published or why not.
    pub fn save_crawl<R: CrawlRecord>(&self, r: &R) -> Result<(), StoreError> {
        let json = serde_json::to_string(r).expect("serializable");
        self.conn()
            .execute(
                "INSERT INTO crawls (site, started_at, outcome, report) VALUES (?1, ?2, ?3, ?4)",
                params![r.site(), r.started_at() as i64, r.outcome(), json],
            )
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    /// The newest crawls first, of one site or all, of one outcome (`"published"`) or all.
    pub fn crawls<R: CrawlRecord>(
        &self,
        site: Option<&str>,
        outcome: Option<&str>,
        limit: usize,
    ) -> Result<Vec<R>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT report FROM crawls WHERE (?1 IS NULL OR site = ?1) AND (?2 IS NULL OR outcome = ?2) ORDER BY id DESC LIMIT ?3")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![site, outcome, limit as i64], |r| {
                r.get::<_, String>(0)
            })
            .map_err(|e| self.sql(e))?;
        let mut out = vec![];
        for row in rows {
            // A row that does not parse (older format, hand edits) is skipped, not fatal.
            if let Ok(r) = serde_json::from_str(&row.map_err(|e| self.sql(e))?) {
                out.push(r);
            }
        }
        Ok(out)
    }
}

/// Backs the state database up (see [`Store::backup`]); a failure is logged, not fatal.
pub async fn backup_logged(data_dir: &Path) {
    let dir = data_dir.to_path_buf();
    match tokio::task::spawn_blocking(move || Store::backup(&dir, crate::util::now_millis())).await
    {
        Ok(Ok(path)) => tracing::debug!(path = %path.display(), "state database backed up"),
        Ok(Err(e)) => tracing::warn!("could not back up the state database: {e}"),
        Err(e) => tracing::warn!("could not back up the state database: {e}"),
    }
}

/// A backup of the state database at start and every day after.
pub async fn daily_backups(data_dir: PathBuf, shutdown: tokio_util::sync::CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(86_400)) => backup_logged(&data_dir).await,
            _ = shutdown.cancelled() => return,
        }
    }
}

/// The backups in `<data_dir>/backups/`, oldest first (their names sort by date).
pub fn backups(data_dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(data_dir.join(BACKUP_DIR))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("understudy-") && n.ends_with(".db"))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// A missing or empty database where understudy has been running before is an error.
fn refuse_if_lost(data_dir: &Path, path: &Path) -> Result<(), StoreError> {
    let what = match std::fs::metadata(path) {
        Err(_) => "missing",
        Ok(m) if m.len() == 0 => "empty",
        Ok(_) => return Ok(()),
    };
    let traces: Vec<&str> = TRACES
        .iter()
        .copied()
        .filter(|t| data_dir.join(t).exists())
        .collect();
    if traces.is_empty() {
        return Ok(());
    }
    Err(StoreError::Missing {
        path: path.to_path_buf(),
        what,
        dir: data_dir.to_path_buf(),
        traces: traces.join(", "),
        hint: restore_hint(data_dir),
    })
}

fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

/// What to do about a lost or damaged database, in words: restore the newest backup, or start
/// afresh on purpose.
fn restore_hint(data_dir: &Path) -> String {
    let db = data_dir.join(DB_FILE);
    let fresh = "or start every site afresh with `understudy run --reset-state` (a damaged file is moved aside, not deleted)";
    match backups(data_dir).pop() {
        Some(b) => format!(
            "To restore the newest backup, stop understudy and copy {} to {}; {fresh}",
            b.display(),
            db.display()
        ),
        None => format!(
            "There is no backup in {} to restore; {fresh}",
            data_dir.join(BACKUP_DIR).display()
        ),
    }
}

mod history;
#[cfg(test)]
mod tests;
mod zones;
pub use history::{pack_history_hourly, Packed};
