//! Ids a process has seen stored, for rows that are created on first mention and never deleted
//! (users, customers). Because such a row never goes away, "stored" stays true and needs no
//! invalidation, on one node or many.

/// `(tenant, id)` pairs seen stored.
pub struct KnownIds(quick_cache::sync::Cache<(String, String), ()>);

impl KnownIds {
    pub fn new(capacity: usize) -> Self {
        Self(quick_cache::sync::Cache::new(capacity))
    }

    pub fn contains(&self, tenant: &str, id: &str) -> bool {
        self.0.get(&(tenant.to_owned(), id.to_owned())).is_some()
    }

    /// Remember an id only once it is known to be committed: an id a transaction of this
    /// process inserted is remembered when a later request finds it already stored, and only
    /// after that request commits (`Conn::after_commit`): on SQLite it may have found the
    /// uncommitted row of another writer sharing its commit.
    pub fn remember(&self, tenant: &str, id: &str) {
        self.0.insert((tenant.to_owned(), id.to_owned()), ());
    }
}

impl std::fmt::Debug for KnownIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KnownIds({} entries)", self.0.len())
    }
}
