//! The crawl's bookkeeping: the frontier (what is queued and what was seen, admitted by scope,
//! robots, trap rules and the page cap; guesses apart from references) and the recording of each
//! answer into the snapshot and the report.

use super::*;
use crate::mirror::snapshot::SnapshotWriter;

/// The crawl's bookkeeping (the main loop's state).
pub(super) struct Crawl {
    pub(super) scope: Scope,
    pub(super) guard: Guard,
    pub(super) max_pages: usize,
    pub(super) seen: HashSet<String>,
    pub(super) queue: VecDeque<Job>,
    pub(super) admitted: usize,
    /// Failures in a row: when the origin stops answering, the crawl stops early.
    pub(super) consecutive_failures: usize,
    pub(super) robots: Option<Robots>,
    pub(super) honour_robots: bool,
    /// Page → `<lastmod>` in the last good snapshot's sitemaps, and in this crawl's.
    pub(super) old_lastmod: HashMap<String, String>,
    pub(super) new_lastmod: HashMap<String, String>,
    /// Cleared when a sampled page shows the sitemap's word was wrong.
    pub(super) trust_sitemap: bool,
    /// Pages taken on the sitemap's word, to fetch after all if it is distrusted.
    pub(super) reused_jobs: Vec<Job>,
    /// Sitemaps found (fetched before the pages).
    pub(super) sitemaps: VecDeque<Url>,
    /// Pages the sitemaps list, queued after the start URLs.
    pub(super) sitemap_pages: Vec<Url>,
    /// Still reading sitemaps (their pages wait), or crawling (they are queued at once).
    pub(super) prephase: bool,
    pub(super) fresh_candidates: usize,
    /// Admitted as guesses only, not answered yet.
    pub(super) guessed: HashSet<String>,
    /// Guesses the origin did not answer (a reference found later fetches them after all).
    pub(super) missed_guesses: HashSet<String>,
    pub(super) report: Report,
}

impl Crawl {
    pub(super) fn hit(&mut self, why: Skip, url: &str, w: &mut SnapshotWriter<'_>) {
        *self
            .report
            .limits_hit
            .entry(why.as_str().to_string())
            .or_default() += 1;
        w.skip(url, why.as_str());
    }

    /// The sitemap lists `url` with the same `<lastmod>` as in the last good snapshot.
    pub(super) fn sitemap_says_unchanged(&self, url: &str) -> bool {
        match (self.old_lastmod.get(url), self.new_lastmod.get(url)) {
            (Some(a), Some(b)) => a == b && !a.trim().is_empty(),
            _ => false,
        }
    }

    pub(super) fn enqueue_sitemap_pages(&mut self, w: &mut SnapshotWriter<'_>) {
        for u in std::mem::take(&mut self.sitemap_pages) {
            self.enqueue(u, 1, 0, w);
        }
    }

    pub(super) fn enqueue(
        &mut self,
        u: Url,
        depth: u32,
        redirects: u32,
        w: &mut SnapshotWriter<'_>,
    ) {
        if !self.scope.contains(&u) {
            return;
        }
        let key = u.to_string();
        if self.seen.contains(&key) {
            // Guessed first, referred to now: a reference after all.
            self.guessed.remove(&key);
            if self.missed_guesses.remove(&key) {
                w.unskip(&key);
                self.queue.push_back(Job {
                    url: u,
                    depth,
                    redirects,
                    check: false,
                });
            }
            return;
        }
        self.seen.insert(key.clone());
        if self.honour_robots && self.robots.as_ref().is_some_and(|r| !r.allows(&u)) {
            return self.hit(Skip::Robots, &key, w);
        }
        if let Err(why) = self.guard.admit(&u, depth, redirects) {
            return self.hit(why, &key, w);
        }
        if self.admitted >= self.max_pages {
            return self.hit(Skip::Pages, &key, w);
        }
        self.admitted += 1;
        self.queue.push_back(Job {
            url: u,
            depth,
            redirects,
            check: false,
        });
    }

    /// Queues a guess. A guess no rule admits is dropped without a trace: it was never a
    /// reference, so no limit was hit and nothing is missing.
    pub(super) fn enqueue_guess(&mut self, u: Url, depth: u32) {
        let key = u.to_string();
        if !self.scope.contains(&u)
            || self.seen.contains(&key)
            || self.admitted >= self.max_pages
            || self.honour_robots && self.robots.as_ref().is_some_and(|r| !r.allows(&u))
            || self.guard.admit(&u, depth, 0).is_err()
        {
            return;
        }
        self.seen.insert(key.clone());
        self.guessed.insert(key);
        self.admitted += 1;
        self.queue.push_back(Job {
            url: u,
            depth,
            redirects: 0,
            check: false,
        });
    }

    /// A guess the origin did not answer: recorded as skipped, never an error.
    pub(super) fn missed(&mut self, key: String, why: &str, w: &mut SnapshotWriter<'_>) {
        self.report.guesses_missed += 1;
        w.skip(&key, &format!("speculative: {why}"));
        self.missed_guesses.insert(key);
    }

    pub(super) fn follow(
        &mut self,
        found: extract::Discovered,
        depth: u32,
        w: &mut SnapshotWriter<'_>,
    ) {
        for r in found.refs {
            self.enqueue(r, depth, 0, w);
        }
        for g in found.guesses {
            self.enqueue_guess(g, depth);
        }
    }

    pub(super) fn record(
        &mut self,
        d: Done,
        w: &mut SnapshotWriter<'_>,
        progress: &Progress,
    ) -> Result<(), CrawlError> {
        self.report.bytes += d.wire;
        if !d.reused {
            self.report.fetched += 1;
            progress.fetched.fetch_add(1, Ordering::Relaxed);
        }
        progress.bytes.fetch_add(d.wire, Ordering::Relaxed);
        let key = d.url.to_string();
        let guess = self.guessed.remove(&key);
        match d.outcome {
            Outcome::Answer { entry, .. } if guess && entry.status >= 400 => {
                self.consecutive_failures = 0;
                self.missed(key, &format!("the origin answered {}", entry.status), w);
            }
            Outcome::Failed {
                reason,
                carried: None,
            } if guess => self.missed(key, &reason, w),
            Outcome::Answer {
                entry,
                found,
                redirect,
                not_modified,
                robots,
                sitemap,
            } => {
                self.consecutive_failures = 0;
                if d.check && d.changed && self.trust_sitemap {
                    // The sitemap said unchanged, the page says otherwise: take nothing more on
                    // its word, and fetch what was taken so far.
                    self.trust_sitemap = false;
                    self.report.sitemap_distrusted = true;
                    tracing::warn!(site = %self.report.site, url = %key, "the sitemap's <lastmod> is not kept up to date; fetching every page");
                    self.report.reused -= self.reused_jobs.len() as u64;
                    for j in self.reused_jobs.drain(..) {
                        self.queue.push_back(j);
                    }
                }
                if let Some(sm) = sitemap {
                    for (u, lastmod) in sm.pages {
                        if let Some(l) = lastmod {
                            self.new_lastmod.insert(u.to_string(), l);
                        }
                        self.sitemap_pages.push(u);
                    }
                    self.sitemaps.extend(sm.sitemaps.iter().cloned());
                    if !self.prephase {
                        for u in sm.sitemaps {
                            self.enqueue(u, d.depth + 1, 0, w);
                        }
                        self.enqueue_sitemap_pages(w);
                    }
                }
                if not_modified && !d.reused {
                    self.report.not_modified += 1;
                    progress.not_modified.fetch_add(1, Ordering::Relaxed);
                }
                if guess {
                    self.report.guesses_kept += 1;
                }
                w.add(&key, entry);
                if robots.is_some() {
                    self.robots = robots;
                }
                self.follow(found, d.depth + 1, w);
                if let Some(r) = redirect {
                    self.enqueue(r, d.depth, d.redirects + 1, w);
                }
            }
            // A guess kept last time that failed now: it keeps its entry, and is no error.
            Outcome::Failed {
                carried: Some((entry, found)),
                ..
            } if guess => {
                w.add(&key, entry);
                self.follow(found, d.depth + 1, w);
            }
            Outcome::Failed { reason, carried } => {
                self.consecutive_failures += 1;
                self.report.errors += 1;
                progress.errors.fetch_add(1, Ordering::Relaxed);
                if self.report.error_samples.len() < 20 {
                    self.report.error_samples.push(format!("{key}: {reason}"));
                }
                tracing::debug!(site = %self.report.site, url = %key, %reason, "fetch failed");
                if let Some((entry, found)) = carried {
                    w.add(&key, entry);
                    self.follow(found, d.depth + 1, w);
                }
            }
            Outcome::Limited(why) => self.hit(why, &key, w),
            Outcome::Fatal(e) => return Err(e.into()),
        }
        Ok(())
    }
}
