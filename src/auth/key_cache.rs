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
//! SQLite reads are in-process and cheap, and a revocation by another process could not be
//! announced, so on SQLite nothing is remembered.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::postgres::PgListener;
use tokio::sync::watch;

use super::Tenant;

/// Channel on which revocations are announced.
pub const CHANNEL: &str = "omnirail_api_keys";
/// Longest a remembered key goes unchecked, whatever happens to notifications.
pub const MAX_AGE: Duration = Duration::from_secs(60);

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

    fn tenant() -> Tenant {
        Tenant {
            id: "ten_1".into(),
            key_id: "key_1".into(),
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
