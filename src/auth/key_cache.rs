//! API keys remembered in memory on PostgreSQL, forgotten on every revocation.
//!
//! Checking the key costs every request a database round trip. On PostgreSQL, `serve` keeps
//! the keys it has checked in memory and listens on the channel `omnirail_api_keys`; revoking a
//! key (from any process) sends a notification on that channel in the revoking transaction, so
//! every node forgets all remembered keys as soon as the revocation commits, within the time a
//! notification takes to arrive. While the listening connection is down nothing is remembered,
//! and every remembered key is checked again after [`MAX_AGE`] regardless.
//!
//! A lookup that raced a revocation must not repopulate the cache with the revoked key: each
//! lookup notes the generation before asking the database and stores its answer only if no
//! notification arrived meanwhile.
//!
//! On SQLite no process can announce anything to another, so `serve` reads the keys' revocation
//! mark (how many keys are revoked, and the latest revocation's time) every
//! [`REVOCATION_POLL`] and forgets every remembered key when the mark moved: a key revoked by
//! `omnirail key revoke` is refused within that interval. (Until issue 23's fourth pass SQLite
//! checked the key on every request, a read through another thread each time.)

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::postgres::PgListener;
use tokio::sync::watch;

use super::Tenant;

/// Channel on which revocations are announced.
pub const CHANNEL: &str = "omnirail_api_keys";
/// Longest a remembered key goes unchecked, whatever happens to notifications.
pub const MAX_AGE: Duration = Duration::from_secs(60);
/// How often `serve` on SQLite reads the keys' revocation mark.
pub const REVOCATION_POLL: Duration = Duration::from_millis(250);

/// What changes whenever a key is revoked: how many keys are revoked, and the latest
/// revocation's time.
pub type RevocationMark = (i64, i64);

/// Remembered keys, by hash.
pub struct KeyCache {
    keys: quick_cache::sync::Cache<String, (Tenant, Instant)>,
    generation: AtomicU64,
    live: AtomicBool,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("entries", &self.keys.len())
            .field("live", &self.live.load(Ordering::Relaxed))
            .finish()
    }
}

impl Default for KeyCache {
    fn default() -> Self {
        Self {
            keys: quick_cache::sync::Cache::new(10_000),
            generation: AtomicU64::new(0),
            live: AtomicBool::new(false),
        }
    }
}

impl KeyCache {
    /// A remembered, fresh answer for `hash`.
    pub fn get(&self, hash: &str) -> Option<Tenant> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        self.keys
            .get(hash)
            .filter(|(_, at)| at.elapsed() < MAX_AGE)
            .map(|(tenant, _)| tenant)
    }

    /// The generation to pass to [`KeyCache::remember`] after asking the database.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Stores a valid key's tenant, unless a revocation was announced since `generation`.
    pub fn remember(&self, hash: String, tenant: Tenant, generation: u64) {
        if self.live.load(Ordering::Acquire) {
            self.keys.insert(hash, (tenant, Instant::now()));
            // A notification that arrived during the insert is honoured by forgetting again.
            if self.generation() != generation {
                self.forget_all();
            }
        }
    }

    fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.keys.clear();
    }

    fn set_live(&self, live: bool) {
        self.forget_all();
        self.live.store(live, Ordering::Release);
    }

    /// Takes the keys' revocation mark as just read (`None`: it could not be read): the first
    /// mark read makes the cache live, a mark unlike the last one forgets every key, and no
    /// mark stops remembering until one is read again.
    fn observe(&self, last: &mut Option<RevocationMark>, now: Option<RevocationMark>) {
        match (*last, now) {
            (_, None) => self.set_live(false),
            (None, Some(_)) => self.set_live(true),
            (Some(before), Some(mark)) if before != mark => self.forget_all(),
            _ => {}
        }
        *last = now;
    }

    /// On SQLite: reads the keys' revocation mark every [`REVOCATION_POLL`] until `stop` flips,
    /// forgetting every remembered key when it moved.
    pub async fn poll_revocations(&self, db: crate::store::Db, mut stop: watch::Receiver<bool>) {
        let mut last = None;
        loop {
            let mark = sqlx::query_as::<_, RevocationMark>(
                "SELECT COUNT(revoked_at), COALESCE(MAX(revoked_at), 0) FROM api_keys",
            )
            .fetch_one(db.reader())
            .await;
            if let Err(e) = &mark {
                tracing::warn!(error = %e, "cannot read key revocations; keys are checked on every request until it can");
            }
            self.observe(&mut last, mark.ok());
            tokio::select! {
                _ = tokio::time::sleep(REVOCATION_POLL) => {}
                _ = stop.changed() => break,
            }
        }
        self.set_live(false);
    }

    /// Listens for revocations until `stop` flips; reconnects when the connection drops.
    pub async fn listen(&self, database_url: String, mut stop: watch::Receiver<bool>) {
        loop {
            match PgListener::connect(&database_url).await {
                Ok(mut listener) => match listener.listen(CHANNEL).await {
                    Ok(()) => {
                        self.set_live(true);
                        loop {
                            tokio::select! {
                                received = listener.try_recv() => match received {
                                    // A revocation, or (`None`) a lost connection that will be
                                    // re-established: either way, forget everything.
                                    Ok(_) => self.forget_all(),
                                    Err(e) => {
                                        tracing::warn!(error = %e, "key revocation listener failed; keys are checked on every request until it is back");
                                        break;
                                    }
                                },
                                _ = stop.changed() => {
                                    self.set_live(false);
                                    return;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot listen for key revocations"),
                },
                Err(e) => tracing::warn!(error = %e, "cannot connect the key revocation listener"),
            }
            self.set_live(false);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_revocation_mark_forgets_every_key_and_an_unread_one_stops_remembering() {
        let cache = KeyCache::default();
        let mut last = None;
        cache.remember("h".into(), tenant(), cache.generation());
        assert!(
            cache.get("h").is_none(),
            "nothing is remembered before a mark is read"
        );
        cache.observe(&mut last, Some((0, 0)));
        cache.remember("h".into(), tenant(), cache.generation());
        cache.observe(&mut last, Some((0, 0)));
        assert!(
            cache.get("h").is_some(),
            "the same mark keeps what is remembered"
        );
        cache.observe(&mut last, Some((1, 5)));
        assert!(cache.get("h").is_none(), "a revocation forgets every key");
        // A lookup that began before the revocation was seen does not bring its key back.
        let generation = cache.generation();
        cache.observe(&mut last, Some((2, 9)));
        cache.remember("h".into(), tenant(), generation);
        assert!(cache.get("h").is_none());
        cache.remember("h".into(), tenant(), cache.generation());
        cache.observe(&mut last, None);
        assert!(cache.get("h").is_none(), "an unread mark stops remembering");
        cache.remember("h".into(), tenant(), cache.generation());
        assert!(cache.get("h").is_none());
    }

    fn tenant() -> Tenant {
        Tenant {
            id: "ten_1".into(),
            key_id: "key_1".into(),
            scopes: crate::auth::scopes::Scopes::ADMIN,
            api_key: true,
            expires_at: None,
        }
    }

    #[test]
    fn nothing_is_remembered_unless_listening() {
        let cache = KeyCache::default();
        cache.remember("h".into(), tenant(), cache.generation());
        assert!(cache.get("h").is_none());
        cache.set_live(true);
        cache.remember("h".into(), tenant(), cache.generation());
        assert_eq!(cache.get("h").map(|t| t.id), Some("ten_1".into()));
        cache.set_live(false);
        assert!(cache.get("h").is_none());
    }

    #[test]
    fn a_lookup_that_raced_a_revocation_is_not_remembered() {
        let cache = KeyCache::default();
        cache.set_live(true);
        let before = cache.generation();
        cache.forget_all(); // a revocation arrives while the database is asked
        cache.remember("h".into(), tenant(), before);
        assert!(cache.get("h").is_none());
    }
}
