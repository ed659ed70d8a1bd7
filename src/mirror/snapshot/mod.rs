//! Snapshots of a site, keyed by the original URL (design.md invariants 6 and 7).
//!
//! Layout under `<data_dir>/mirror/<site>/`:
//! - `bodies/ab/abcdef…` — response bodies by SHA-256, shared by every snapshot of the site, so
//!   a new snapshot costs only what changed;
//! - `bodies/ab/abcdef….br`, `….gz` — the brotli and gzip forms of text bodies (or an empty
//!   `.br.none`/`.gz.none` where compressing does not help), made after publishing by the
//!   standby server ([`Bodies::precompress_all`]), so a crawl never waits for compression;
//! - `snapshots/<id>/manifest.json` — one manifest per snapshot: original URL (scheme, host,
//!   path *and* query) → the response the origin gave (status, type, encoding, redirect target,
//!   validators, body hash);
//! - `current` — the id of the published snapshot, replaced atomically (write aside, rename).
//!
//! A snapshot is built in `snapshots/<id>.partial/` and becomes visible only by renaming that
//! directory and then `current`, and only if it passes the checks against the last good one
//! ([`Checks`]); otherwise it is deleted and the last good one stays. A crash at any point
//! leaves `current` pointing at a complete snapshot; leftovers are removed on the next
//! [`SnapshotStore::begin`]: the partial snapshot, and bodies written aside by a process that is
//! gone. A body that cannot be written (a full disk) is removed at once, so a failed crawl
//! leaves the disk as it found it and the next one has the room the last one had. The last `keep` good snapshots are kept; bodies no kept manifest
//! references are garbage-collected.
//!
//! This module owns the files only. Crawling (what goes in) and serving (what comes out) live
//! elsewhere and use this API.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::config::Checks;
use crate::util::sha256_hex;

/// What the origin answered for one URL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// For redirects: where the origin sent the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// SHA-256 of the body, hex; `None` for answers whose body is not kept (redirects, errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    pub length: u64,
}

/// One snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub id: String,
    pub site: String,
    /// Unix milliseconds.
    pub created_at: u64,
    /// The URL a visitor arrives at (must be present and 200 to publish).
    pub entry: String,
    pub entries: BTreeMap<String, Entry>,
    /// In-scope URLs the crawl found but deliberately did not fetch, with the limit that
    /// stopped it (`mirror verify` does not count these as holes).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped: BTreeMap<String, String>,
}

impl Manifest {
    /// The entry that answers `url`, following the snapshot's own redirects (at most 10): what
    /// a visitor arriving at `url` ends up with.
    pub fn resolve_redirects(&self, url: &str) -> Option<(&str, &Entry)> {
        let mut at = url.to_string();
        for _ in 0..=10 {
            let (key, e) = self.entries.get_key_value(&at)?;
            match (&e.location, e.status) {
                (Some(loc), 300..=399) => {
                    at = url::Url::parse(key).ok()?.join(loc).ok()?.to_string();
                }
                _ => return Some((key.as_str(), e)),
            }
        }
        None
    }

    pub fn pages(&self) -> usize {
        self.entries.values().filter(|e| e.status == 200).count()
    }

    pub fn bytes(&self) -> u64 {
        self.entries.values().map(|e| e.length).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("snapshot store {path}: unreadable manifest: {why}")]
    Corrupt { path: PathBuf, why: String },
}

/// Writes `bytes` to `tmp`, syncs it and renames it to `target`; on any failure (a full disk)
/// the file written aside is removed again, so a failed write leaves nothing behind.
fn write_aside(tmp: &Path, bytes: &[u8], target: &Path) -> Result<(), SnapshotError> {
    let written = (|| {
        let mut f = std::fs::File::create(tmp).map_err(io(tmp))?;
        f.write_all(bytes).map_err(io(tmp))?;
        f.sync_all().map_err(io(tmp))?;
        std::fs::rename(tmp, target).map_err(io(target))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    written
}

/// Why a finished snapshot was not published (the last good one stays).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected(pub String);

/// The content-addressed bodies of one site; cheap to clone, shared by concurrent fetches.
#[derive(Clone, Debug)]
pub struct Bodies {
    dir: PathBuf,
}

impl Bodies {
    fn path(&self, hash: &str) -> PathBuf {
        self.dir.join(&hash[..2]).join(hash)
    }

    /// Stores a body once per content (written aside, synced, renamed) and returns its hash.
    pub fn put(&self, bytes: &[u8]) -> Result<String, SnapshotError> {
        let hash = sha256_hex(bytes);
        let path = self.path(&hash);
        if !path.exists() {
            let shard = path.parent().expect("two levels");
            std::fs::create_dir_all(shard).map_err(io(shard))?;
            let tmp = shard.join(format!(
                ".{hash}.{}.{:?}.tmp",
                std::process::id(),
                std::thread::current().id()
            ));
            write_aside(&tmp, bytes, &path)?;
        }
        Ok(hash)
    }

    /// Removes what writers that are gone left behind in `bodies/` (a crash or a full disk
    /// between writing a body aside and renaming it): `.<hash>.<pid>.<thread>.tmp` of a process
    /// that no longer runs, and a compressed form's `.tmp` older than ten minutes. Without
    /// this, the chaos suite's disk-full scenario saw a failed crawl's 4 MB leftover keep the
    /// disk full, so every later crawl failed too.
    fn remove_leftovers(&self) {
        let Ok(shards) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for shard in shards.flatten() {
            let Ok(files) = std::fs::read_dir(shard.path()) else {
                continue;
            };
            for f in files.flatten() {
                let name = f.file_name().to_string_lossy().to_string();
                if !name.ends_with(".tmp") {
                    continue;
                }
                let gone = if let Some(rest) = name.strip_prefix('.') {
                    // .<hash>.<pid>.<thread>.tmp
                    let pid = rest.split('.').nth(1).and_then(|p| p.parse::<u32>().ok());
                    pid.is_some_and(|p| {
                        p != std::process::id()
                            && Path::new("/proc/self").exists()
                            && !Path::new(&format!("/proc/{p}")).exists()
                    })
                } else {
                    f.metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > std::time::Duration::from_secs(600))
                };
                if gone {
                    let _ = std::fs::remove_file(f.path());
                }
            }
        }
    }

    /// The file of a body by hash (which may not exist), or an error if `hash` is not one.
    fn file(&self, hash: &str) -> Result<PathBuf, SnapshotError> {
        if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(SnapshotError::Corrupt {
                path: self.dir.clone(),
                why: format!("`{hash}` is not a body hash"),
            });
        }
        Ok(self.path(hash))
    }

    /// The stored body of a 200 identity entry at `url` that can hold references (a page, a
    /// stylesheet, a manifest, a sitemap); `None` for everything else, without reading it.
    pub fn document(&self, e: &Entry, url: &url::Url) -> Result<Option<Vec<u8>>, SnapshotError> {
        match &e.body {
            Some(h)
                if e.status == 200
                    && e.content_encoding.is_none()
                    && super::extract::may_refer(e.content_type.as_deref(), url) =>
            {
                self.get(h).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Stores the brotli and gzip forms of a text body beside it (`<hash>.br`, `<hash>.gz`),
    /// when they are smaller, so the standby never compresses on a request. Done once per body.
    pub fn precompress(&self, hash: &str, e: &Entry) -> Result<(), SnapshotError> {
        if e.status != 200
            || e.content_encoding.is_some()
            || e.length < 512
            || !compressible(e.content_type.as_deref())
        {
            return Ok(());
        }
        let mut body: Option<Vec<u8>> = None;
        for (enc, ext) in [("br", "br"), ("gzip", "gz")] {
            let path = self.path(hash).with_extension(ext);
            if path.exists()
                || self
                    .path(hash)
                    .with_extension(format!("{ext}.none"))
                    .exists()
            {
                continue;
            }
            if body.is_none() {
                body = Some(self.get(hash)?);
            }
            let plain = body.as_deref().unwrap_or_default();
            let packed = compress(enc, plain);
            // Not smaller: an empty marker says so, and the body is served as it is.
            let (target, bytes) = if packed.len() < plain.len() {
                (path, packed)
            } else {
                (
                    self.path(hash).with_extension(format!("{ext}.none")),
                    Vec::new(),
                )
            };
            let tmp = target.with_extension("tmp");
            // Synced before the rename (off any crawl's path): a `.br` that a crash emptied
            // would be served as an empty body.
            write_aside(&tmp, &bytes, &target)?;
        }
        Ok(())
    }

    /// [`Bodies::precompress`] for every body of `m`, on as many threads as there are cores.
    /// Returns how many bodies were looked at. Publishing does not wait for this: the standby
    /// server calls it for each snapshot it starts serving, and compresses on a request (once
    /// per body, cached in memory) what is not stored yet. A failure only costs that CPU later.
    pub fn precompress_all(&self, m: &Manifest) -> usize {
        let mut seen = BTreeSet::new();
        let work: Vec<(&String, &Entry)> = m
            .entries
            .values()
            .filter_map(|e| e.body.as_ref().map(|h| (h, e)))
            .filter(|(h, _)| seen.insert(*h))
            .collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::thread::scope(|scope| {
            for _ in 0..threads.min(work.len()) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((h, e)) = work.get(i) else { break };
                    if let Err(err) = self.precompress(h, e) {
                        tracing::warn!(error = %err, "could not store a compressed body");
                    }
                });
            }
        });
        work.len()
    }

    /// The stored `br` or `gzip` form of a body, if [`Bodies::precompress`] made one.
    pub fn encoded(&self, hash: &str, encoding: &str) -> Option<Vec<u8>> {
        let ext = if encoding == "br" { "br" } else { "gz" };
        let packed = std::fs::read(self.file(hash).ok()?.with_extension(ext)).ok()?;
        // Neither format is ever empty; an empty file is not one.
        (!packed.is_empty()).then_some(packed)
    }

    /// A body by hash.
    pub fn get(&self, hash: &str) -> Result<Vec<u8>, SnapshotError> {
        let p = self.file(hash)?;
        std::fs::read(&p).map_err(io(&p))
    }

    /// A body and its open file, read through that same handle (so both are the same
    /// content however the directory changes later), for a server that sends the file.
    pub fn get_with_file(&self, hash: &str) -> Result<(Vec<u8>, std::fs::File), SnapshotError> {
        use std::io::Read;
        let p = self.file(hash)?;
        let mut f = std::fs::File::open(&p).map_err(io(&p))?;
        let mut data = Vec::new();
        f.read_to_end(&mut data).map_err(io(&p))?;
        Ok((data, f))
    }
}

/// Types worth compressing (text and text-like); images and archives are compressed already.
pub fn compressible(content_type: Option<&str>) -> bool {
    let ct = super::extract::media_type(content_type);
    ct.starts_with("text/")
        || matches!(
            ct.as_str(),
            "application/javascript"
                | "application/json"
                | "application/xml"
                | "application/xhtml+xml"
                | "application/manifest+json"
                | "application/rss+xml"
                | "application/atom+xml"
                | "image/svg+xml"
        )
}

/// `body` compressed with `encoding` (`br` or `gzip`).
pub fn compress(encoding: &str, body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match encoding {
        "br" => {
            let mut out = Vec::with_capacity(body.len() / 3);
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 16 * 1024, 6, 22);
                let _ = w.write_all(body);
            }
            out
        }
        _ => {
            let mut w = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 3),
                flate2::Compression::new(6),
            );
            let _ = w.write_all(body);
            w.finish().unwrap_or_default()
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// All snapshots of one site.
#[derive(Clone, Debug)]
pub struct SnapshotStore {
    root: PathBuf,
    site: String,
}

impl SnapshotStore {
    pub fn open(data_dir: &Path, site: &str) -> Result<Self, SnapshotError> {
        let root = data_dir.join("mirror").join(site);
        for d in ["bodies", "snapshots"] {
            std::fs::create_dir_all(root.join(d)).map_err(io(&root))?;
        }
        Ok(SnapshotStore {
            root,
            site: site.to_string(),
        })
    }

    pub fn bodies(&self) -> Bodies {
        Bodies {
            dir: self.root.join("bodies"),
        }
    }

    /// The id of the published snapshot, if any (one small read: cheap to poll).
    pub fn current_id(&self) -> Result<Option<String>, SnapshotError> {
        let p = self.root.join("current");
        match std::fs::read_to_string(&p) {
            Ok(id) => Ok(Some(id.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SnapshotError::Io { path: p, source: e }),
        }
    }

    /// The published snapshot, if any.
    pub fn current(&self) -> Result<Option<Manifest>, SnapshotError> {
        match self.current_id()? {
            Some(id) => self.manifest(&id).map(Some),
            None => Ok(None),
        }
    }

    /// A kept snapshot by id.
    pub fn manifest(&self, id: &str) -> Result<Manifest, SnapshotError> {
        let p = self.root.join("snapshots").join(id).join("manifest.json");
        let text = std::fs::read_to_string(&p).map_err(io(&p))?;
        serde_json::from_str(&text).map_err(|e| SnapshotError::Corrupt {
            path: p,
            why: e.to_string(),
        })
    }

    /// A body by hash (what the standby server will send).
    pub fn body(&self, hash: &str) -> Result<Vec<u8>, SnapshotError> {
        self.bodies().get(hash)
    }

    /// Starts a new snapshot, first removing what an interrupted one left behind.
    pub fn begin(
        &self,
        id: &str,
        entry: &str,
        created_at: u64,
    ) -> Result<SnapshotWriter<'_>, SnapshotError> {
        let snaps = self.root.join("snapshots");
        for e in std::fs::read_dir(&snaps).map_err(io(&snaps))?.flatten() {
            if e.file_name().to_string_lossy().ends_with(".partial") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        self.bodies().remove_leftovers();
        let dir = snaps.join(format!("{id}.partial"));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(SnapshotWriter {
            store: self,
            dir,
            manifest: Manifest {
                id: id.to_string(),
                site: self.site.clone(),
                created_at,
                entry: entry.to_string(),
                entries: BTreeMap::new(),
                skipped: BTreeMap::new(),
            },
            fetched: 0,
            errors: 0,
            abort: None,
        })
    }

    /// Ids of the good snapshots on disk, oldest first (ids sort by time).
    fn snapshot_ids(&self) -> Result<Vec<String>, SnapshotError> {
        let snaps = self.root.join("snapshots");
        let mut ids: Vec<String> = std::fs::read_dir(&snaps)
            .map_err(io(&snaps))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| !n.ends_with(".partial"))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Keeps the newest `keep` snapshots (always the current one) and, when one was dropped or
    /// `sweep_anyway` (a rejected crawl), deletes bodies no kept manifest references. Returns
    /// how many bodies were removed.
    fn collect_garbage(
        &self,
        keep: usize,
        current: &str,
        sweep_anyway: bool,
    ) -> Result<usize, SnapshotError> {
        let ids = self.snapshot_ids()?;
        let drop_n = ids.len().saturating_sub(keep.max(1));
        let dropped: Vec<&String> = ids
            .iter()
            .take(drop_n)
            .filter(|id| *id != current)
            .collect();
        for id in &dropped {
            let _ = std::fs::remove_dir_all(self.root.join("snapshots").join(id));
        }
        // A publish that dropped no snapshot made no body unreferenced: the sweep (every shard
        // listed) waits for one that does. Leftovers of a stopped or rejected crawl are swept
        // then, since they are unreferenced too.
        if dropped.is_empty() && !sweep_anyway {
            return Ok(0);
        }
        let mut live = BTreeSet::new();
        for id in self.snapshot_ids()? {
            if let Ok(m) = self.manifest(&id) {
                live.extend(m.entries.values().filter_map(|e| e.body.clone()));
            }
        }
        let mut removed = 0;
        let bodies = self.root.join("bodies");
        for shard in std::fs::read_dir(&bodies).map_err(io(&bodies))?.flatten() {
            for f in std::fs::read_dir(shard.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = f.file_name().to_string_lossy().to_string();
                // `<hash>.br`, `<hash>.gz` (and their `.none` markers) live and die with the body.
                let body = name.split('.').next().unwrap_or_default();
                if !live.contains(body) && std::fs::remove_file(f.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// A snapshot being built; nothing of it is visible until [`SnapshotWriter::finish`].
pub struct SnapshotWriter<'a> {
    store: &'a SnapshotStore,
    dir: PathBuf,
    manifest: Manifest,
    fetched: usize,
    errors: usize,
    abort: Option<String>,
}

/// What publishing did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub id: String,
    pub pages: usize,
    pub bytes: u64,
    /// Bodies this snapshot references that the last good one did not.
    pub new_bodies: usize,
    pub bodies_collected: usize,
}

impl SnapshotWriter<'_> {
    /// Stores a body (once per content) and returns its hash.
    pub fn put_body(&mut self, bytes: &[u8]) -> Result<String, SnapshotError> {
        self.store.bodies().put(bytes)
    }

    pub fn add(&mut self, url: &str, entry: Entry) {
        self.manifest.entries.insert(url.to_string(), entry);
    }

    /// Whether the snapshot has an entry for `url` yet.
    pub fn has(&self, url: &str) -> bool {
        self.manifest.entries.contains_key(url)
    }

    /// Why a limit kept `url` out, if one did.
    pub fn skipped_why(&self, url: &str) -> Option<&str> {
        self.manifest.skipped.get(url).map(String::as_str)
    }

    /// Records an in-scope URL a limit kept the crawl from fetching.
    pub fn skip(&mut self, url: &str, why: &str) {
        self.manifest
            .skipped
            .entry(url.to_string())
            .or_insert_with(|| why.to_string());
    }

    /// Takes back a [`skip`](Self::skip): the URL is fetched after all.
    pub fn unskip(&mut self, url: &str) {
        self.manifest.skipped.remove(url);
    }

    /// How many URLs were fetched and how many of those failed (for the error-rate check).
    pub fn set_tally(&mut self, fetched: usize, errors: usize) {
        (self.fetched, self.errors) = (fetched, errors);
    }

    /// Marks the snapshot as incomplete: `finish` will reject it with this reason.
    pub fn reject(&mut self, why: String) {
        self.abort.get_or_insert(why);
    }

    /// Removes the unfinished snapshot now (a stopped crawl) instead of at the next begin.
    pub fn abandon(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Publishes atomically if the snapshot passes the checks against the last good one;
    /// otherwise discards it and says why (the last good one stays published).
    pub fn finish(self, checks: Checks) -> Result<Result<Published, Rejected>, SnapshotError> {
        let m = &self.manifest;
        let verdict = match m.resolve_redirects(&m.entry) {
            _ if self.abort.is_some() => Err(self.abort.clone().unwrap_or_default()),
            None => Err(format!("the entry page {} is not in the snapshot", m.entry)),
            Some((at, e)) if e.status != 200 => {
                Err(format!("the entry page {at} answered {}", e.status))
            }
            Some(_) => Ok(()),
        };
        let verdict = verdict.and_then(|()| {
            let rate = if self.fetched == 0 {
                0.0
            } else {
                self.errors as f64 / self.fetched as f64
            };
            if rate > checks.max_error_fraction {
                Err(format!(
                    "{} of {} fetches failed ({:.0}%, more than the allowed {:.0}%)",
                    self.errors,
                    self.fetched,
                    rate * 100.0,
                    checks.max_error_fraction * 100.0
                ))
            } else {
                Ok(())
            }
        });
        let last = self.store.current()?;
        let verdict = verdict.and_then(|()| match &last {
            Some(l) if (m.pages() as f64) < l.pages() as f64 * checks.min_fraction => Err(format!(
                "{} pages, fewer than {:.0}% of the last good snapshot's {}",
                m.pages(),
                checks.min_fraction * 100.0,
                l.pages()
            )),
            Some(l) if (m.bytes() as f64) < l.bytes() as f64 * checks.min_fraction => Err(format!(
                "{} bytes, less than {:.0}% of the last good snapshot's {}",
                m.bytes(),
                checks.min_fraction * 100.0,
                l.bytes()
            )),
            _ => Ok(()),
        });
        if let Err(why) = verdict {
            let _ = std::fs::remove_dir_all(&self.dir);
            // Bodies only this snapshot had are unreferenced now.
            let current = last.map(|l| l.id).unwrap_or_default();
            self.store.collect_garbage(checks.keep, &current, true)?;
            return Ok(Err(Rejected(why)));
        }
        // Write the manifest aside, then rename the directory, then move `current`: each step
        // is atomic, and `current` only ever names a complete snapshot.
        let manifest_path = self.dir.join("manifest.json");
        let mut f = std::fs::File::create(&manifest_path).map_err(io(&manifest_path))?;
        f.write_all(
            serde_json::to_string_pretty(m)
                .expect("serializable")
                .as_bytes(),
        )
        .map_err(io(&manifest_path))?;
        f.sync_all().map_err(io(&manifest_path))?;
        let final_dir = self.store.root.join("snapshots").join(&m.id);
        std::fs::rename(&self.dir, &final_dir).map_err(io(&final_dir))?;
        let tmp = self.store.root.join(".current.tmp");
        std::fs::write(&tmp, &m.id).map_err(io(&tmp))?;
        std::fs::rename(&tmp, self.store.root.join("current")).map_err(io(&tmp))?;
        let before: BTreeSet<&String> = last
            .iter()
            .flat_map(|l| l.entries.values().filter_map(|e| e.body.as_ref()))
            .collect();
        let new_bodies = m
            .entries
            .values()
            .filter_map(|e| e.body.as_ref())
            .filter(|h| !before.contains(h))
            .collect::<BTreeSet<_>>()
            .len();
        let bodies_collected = self.store.collect_garbage(checks.keep, &m.id, false)?;
        Ok(Ok(Published {
            id: m.id.clone(),
            pages: m.pages(),
            bytes: m.bytes(),
            new_bodies,
            bodies_collected,
        }))
    }
}

#[cfg(test)]
mod tests;
