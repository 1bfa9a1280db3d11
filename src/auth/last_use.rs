//! When each API key was last used, kept to the minute without a write per request.
//!
//! Each node remembers when it last wrote a key's `last_used_at`; a request with the key writes
//! it again only when that was [`GRANULARITY_MS`] or more ago (by the server's clock), in a task
//! of its own, off the request's path. So a key in steady use costs each node one small write a
//! minute, an idle node writes nothing, and `lastUsedAt` lags the last request by under a
//! minute. The write never moves the time backwards, whichever node's arrives last.

use dashmap::DashMap;

use crate::store::Db;

/// How stale a key's `last_used_at` may grow before a request writes it again.
pub const GRANULARITY_MS: i64 = 60_000;

/// The time each key's last use was written at, by this node.
#[derive(Debug, Default)]
pub struct LastUse {
    written: DashMap<String, i64>,
}

impl LastUse {
    /// Notes a request with `key_id` at `now`, writing it when this node's last write of it is
    /// stale.
    pub fn touch(&self, db: &Db, key_id: &str, now: i64) {
        if !self.due(key_id, now) {
            return;
        }
        let (db, key_id) = (db.clone(), key_id.to_owned());
        tokio::spawn(async move {
            if let Err(e) = write(&db, &key_id, now).await {
                tracing::warn!(error = %e, key_id, "cannot record the key's last use");
            }
        });
    }

    /// Whether a use at `now` is to be written; if so, it is noted as written.
    fn due(&self, key_id: &str, now: i64) -> bool {
        if let Some(mut written) = self.written.get_mut(key_id) {
            // A clock moved back (tests move theirs) counts as stale too.
            if (0..GRANULARITY_MS).contains(&(now - *written)) {
                return false;
            }
            *written = now;
            return true;
        }
        self.written.insert(key_id.to_owned(), now);
        true
    }
}

async fn write(db: &Db, key_id: &str, now: i64) -> Result<(), crate::error::StoreError> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE api_keys SET last_used_at = $1
         WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
    )
    .bind(now)
    .bind(key_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_written_once_a_minute_at_most() {
        let uses = LastUse::default();
        assert!(uses.due("key_1", 1_000));
        assert!(!uses.due("key_1", 1_001));
        assert!(!uses.due("key_1", 1_000 + GRANULARITY_MS - 1));
        assert!(uses.due("key_2", 1_001), "each key on its own");
        assert!(uses.due("key_1", 1_000 + GRANULARITY_MS));
        assert!(uses.due("key_1", 500), "a clock moved back writes again");
    }
}
