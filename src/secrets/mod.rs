//! Secrets at rest: what Omnirail must present, not just check (webhook signing secrets, the
//! notification providers' credentials), encrypted with keys the database does not hold.
//!
//! Envelope encryption, AES-256-GCM (aws-lc-rs):
//! - the **key-encryption key** (KEK), 32 bytes, comes from configuration (`[secrets]`: a file,
//!   or the key itself), never from the database;
//! - each tenant has a **data key** (32 random bytes), stored wrapped under the KEK in
//!   `tenant_data_keys` with the KEK's id; unwrapped data keys are kept in memory;
//! - each secret is sealed under its tenant's data key as `enc:v1:<base64url(nonce, ciphertext,
//!   tag)>`, bound (as associated data) to its tenant and to the place it is kept (an endpoint,
//!   a provider): a sealed value copied to another row or tenant does not open.
//!
//! Rotating the KEK re-wraps the data keys ([`Vault::rewrap`], `omnirail secrets rewrap`); the
//! secrets themselves are not touched, and a node that holds the old KEK among its previous ones
//! keeps working throughout (docs/security.md). A database dump alone reveals no secret: the
//! data keys in it are wrapped under a key it does not hold.

use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use dashmap::DashMap;
use sha2::{Digest, Sha256};

use crate::config::SecretsConfig;
use crate::error::StoreError;
use crate::store::Db;

/// What a sealed value starts with.
pub const SEALED: &str = "enc:v1:";
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// A key-encryption key and its id (the first 16 hex digits of a digest of it: it names the
/// key without revealing it).
pub struct Kek {
    id: String,
    key: LessSafeKey,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kek({})", self.id)
    }
}

impl Kek {
    /// A KEK from its base64 text (32 bytes).
    pub fn parse(text: &str) -> Result<Kek, String> {
        let raw = STANDARD
            .decode(text.trim())
            .map_err(|_| "a key-encryption key must be base64".to_owned())?;
        if raw.len() != KEY_LEN {
            return Err(format!(
                "a key-encryption key must be {KEY_LEN} bytes, this one is {}",
                raw.len()
            ));
        }
        let mut digest = Sha256::new();
        digest.update(b"omnirail.kek.id\n");
        digest.update(&raw);
        Ok(Kek {
            id: hex::encode(digest.finalize())[..16].to_owned(),
            key: aes_key(&raw)?,
        })
    }

    /// A new random KEK, as base64 text.
    pub fn generate() -> String {
        let mut raw = [0u8; KEY_LEN];
        fill(&mut raw);
        STANDARD.encode(raw)
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

fn aes_key(raw: &[u8]) -> Result<LessSafeKey, String> {
    UnboundKey::new(&AES_256_GCM, raw)
        .map(LessSafeKey::new)
        .map_err(|_| "not an AES-256 key".to_owned())
}

fn fill(bytes: &mut [u8]) {
    rand::fill(bytes);
}

fn seal_with(key: &LessSafeKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    fill(&mut nonce);
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    let mut body = plaintext.to_vec();
    // Sealing fails only for inputs of gigabytes: not a secret's size.
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut body,
    )
    .expect("AES-GCM seals any secret");
    out.extend_from_slice(&body);
    out
}

fn open_with(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut body = body.to_vec();
    let plain = key.open_in_place(nonce, Aad::from(aad), &mut body).ok()?;
    Some(plain.to_vec())
}

fn wrap_aad(tenant: &str) -> Vec<u8> {
    format!("omnirail.data-key.v1\n{tenant}").into_bytes()
}

fn secret_aad(tenant: &str, context: &str) -> Vec<u8> {
    format!("omnirail.secret.v1\n{tenant}\n{context}").into_bytes()
}

/// Whether a stored value is sealed (else it was stored before secrets were encrypted).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED)
}

/// The process's KEKs and the tenants' unwrapped data keys.
pub struct Vault {
    current: Kek,
    previous: Vec<Kek>,
    keys: DashMap<String, Arc<LessSafeKey>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("current", &self.current)
            .field("previous", &self.previous)
            .field("data_keys", &self.keys.len())
            .finish()
    }
}

impl Vault {
    /// A vault of the given KEKs (tests and tools).
    pub fn new(current: Kek, previous: Vec<Kek>) -> Self {
        Self {
            current,
            previous,
            keys: DashMap::new(),
        }
    }

    /// The vault `config` names (see [`provide_kek`] for a KEK file not yet there). Whether
    /// the stored data keys are wrapped under its KEKs is [`Vault::check`]'s.
    pub fn from_config(config: &SecretsConfig) -> Result<Vault, String> {
        let current = match &config.kek {
            Some(kek) => Kek::parse(kek.expose()).map_err(|e| format!("secrets.kek: {e}"))?,
            None => {
                let file = &config.kek_file;
                let text = std::fs::read_to_string(file)
                    .map_err(|e| format!("secrets.kek_file {file}: {e}"))?;
                Kek::parse(&text).map_err(|e| format!("secrets.kek_file {file}: {e}"))?
            }
        };
        let mut previous = Vec::new();
        for text in &config.previous_keks {
            previous.push(
                Kek::parse(text.expose()).map_err(|e| format!("secrets.previous_keks: {e}"))?,
            );
        }
        for file in &config.previous_kek_files {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("secrets.previous_kek_files {file}: {e}"))?;
            previous.push(
                Kek::parse(&text).map_err(|e| format!("secrets.previous_kek_files {file}: {e}"))?,
            );
        }
        Ok(Vault::new(current, previous))
    }

    /// Every data key stored is wrapped under a KEK this vault holds.
    pub async fn check(&self, db: &Db) -> Result<(), String> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT DISTINCT kek_id FROM tenant_data_keys")
            .fetch_all(db.reader())
            .await
            .map_err(|e| e.to_string())?;
        let unknown: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| self.kek(id).is_none())
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "data keys in the database are wrapped under key-encryption key {} which this \
                 node does not hold (its current KEK is {}): configure it as secrets.kek_file, \
                 or among secrets.previous_kek_files while a rotation is under way",
                unknown.join(", "),
                self.current.id
            ))
        }
    }

    fn kek(&self, id: &str) -> Option<&Kek> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
    }

    /// The id of the KEK new data keys are wrapped under.
    pub fn current_kek_id(&self) -> &str {
        &self.current.id
    }

    /// `tenant`'s data key: remembered, else read, else created (in a transaction of its own,
    /// committed before any secret is sealed under it).
    async fn data_key(&self, db: &Db, tenant: &str) -> Result<Arc<LessSafeKey>, StoreError> {
        if let Some(key) = self.keys.get(tenant) {
            return Ok(Arc::clone(&key));
        }
        let stored = match read_wrapped(db, tenant).await? {
            Some(stored) => stored,
            None => {
                let mut raw = [0u8; KEY_LEN];
                fill(&mut raw);
                let wrapped =
                    URL_SAFE_NO_PAD.encode(seal_with(&self.current.key, &wrap_aad(tenant), &raw));
                let mut tx = db.begin().await?;
                // Two nodes creating one tenant's key at once: the first insert wins, and
                // both read it back once committed.
                sqlx::query(
                    "INSERT INTO tenant_data_keys (tenant_id, kek_id, wrapped_key, created_at)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id) DO NOTHING",
                )
                .bind(tenant)
                .bind(&self.current.id)
                .bind(&wrapped)
                .bind(db.now_ms())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                read_wrapped(db, tenant).await?.ok_or_else(|| {
                    StoreError::Corrupt(format!("tenant {tenant}'s data key vanished"))
                })?
            }
        };
        let key = Arc::new(self.unwrap(tenant, &stored)?);
        self.keys.insert(tenant.to_owned(), Arc::clone(&key));
        Ok(key)
    }

    fn unwrap(
        &self,
        tenant: &str,
        (kek_id, wrapped): &(String, String),
    ) -> Result<LessSafeKey, StoreError> {
        let raw = self.unwrap_raw(tenant, kek_id, wrapped)?;
        aes_key(&raw).map_err(StoreError::Corrupt)
    }

    /// `plaintext` sealed for `tenant`, bound to `context` (where it is kept: `webhook_endpoint:
    /// ep_...`).
    pub async fn seal(
        &self,
        db: &Db,
        tenant: &str,
        context: &str,
        plaintext: &str,
    ) -> Result<String, StoreError> {
        let key = self.data_key(db, tenant).await?;
        let sealed = seal_with(&key, &secret_aad(tenant, context), plaintext.as_bytes());
        Ok(format!("{SEALED}{}", URL_SAFE_NO_PAD.encode(sealed)))
    }

    /// A stored value opened: a sealed one decrypted, one stored before secrets were sealed as
    /// it is. A sealed value that does not open (another tenant's or place's, or changed) is an
    /// error.
    pub async fn open_stored(
        &self,
        db: &Db,
        tenant: &str,
        context: &str,
        stored: &str,
    ) -> Result<String, StoreError> {
        let Some(encoded) = stored.strip_prefix(SEALED) else {
            return Ok(stored.to_owned());
        };
        let key = self.data_key(db, tenant).await?;
        URL_SAFE_NO_PAD
            .decode(encoded)
            .ok()
            .and_then(|sealed| open_with(&key, &secret_aad(tenant, context), &sealed))
            .and_then(|plain| String::from_utf8(plain).ok())
            .ok_or_else(|| {
                StoreError::Corrupt(format!("a sealed secret of {context} does not open"))
            })
    }

    /// Re-wraps every data key not under the current KEK: `(re-wrapped, data keys in all)`.
    /// Running nodes are unaffected (their data keys do not change); a node must hold the
    /// current KEK to read a data key afterwards.
    pub async fn rewrap(&self, db: &Db) -> Result<(u64, u64), StoreError> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT tenant_id, kek_id, wrapped_key FROM tenant_data_keys ORDER BY tenant_id",
        )
        .fetch_all(db.reader())
        .await?;
        let total = rows.len() as u64;
        let mut done = 0;
        for (tenant, kek_id, wrapped) in rows {
            if kek_id == self.current.id {
                continue;
            }
            let key = self.unwrap_raw(&tenant, &kek_id, &wrapped)?;
            let rewrapped =
                URL_SAFE_NO_PAD.encode(seal_with(&self.current.key, &wrap_aad(&tenant), &key));
            let mut tx = db.begin().await?;
            // Only if nobody re-wrapped it meanwhile.
            done += sqlx::query(
                "UPDATE tenant_data_keys SET kek_id = $1, wrapped_key = $2, rewrapped_at = $3
                 WHERE tenant_id = $4 AND kek_id = $5",
            )
            .bind(&self.current.id)
            .bind(&rewrapped)
            .bind(db.now_ms())
            .bind(&tenant)
            .bind(&kek_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
        }
        Ok((done, total))
    }

    fn unwrap_raw(&self, tenant: &str, kek_id: &str, wrapped: &str) -> Result<Vec<u8>, StoreError> {
        let kek = self.kek(kek_id).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "tenant {tenant}'s data key is wrapped under key-encryption key {kek_id}, which this node does not hold"
            ))
        })?;
        URL_SAFE_NO_PAD
            .decode(wrapped)
            .ok()
            .and_then(|sealed| open_with(&kek.key, &wrap_aad(tenant), &sealed))
            .ok_or_else(|| StoreError::Corrupt(format!("tenant {tenant}'s data key does not open")))
    }
}

/// Makes sure the KEK `config` names is there: with no KEK given and no file in the KEK file's
/// place, a KEK is created there, but only for a database that holds no data key yet (a node
/// of a database whose secrets are sealed must be given the KEK they are sealed under).
pub async fn provide_kek(config: &SecretsConfig, db: &Db) -> Result<(), String> {
    if config.kek.is_some() || Path::new(&config.kek_file).exists() {
        return Ok(());
    }
    let file = &config.kek_file;
    if data_key_count(db).await.map_err(|e| e.to_string())? > 0 {
        return Err(format!(
            "the database's secrets are encrypted, and the key-encryption key file {file} does \
             not exist: give this node the KEK the others use (secrets.kek_file or \
             OMNIRAIL_SECRETS__KEK_FILE)"
        ));
    }
    create_kek_file(Path::new(file)).map(|_| ())
}

async fn read_wrapped(db: &Db, tenant: &str) -> Result<Option<(String, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT kek_id, wrapped_key FROM tenant_data_keys WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_optional(db.reader())
            .await?,
    )
}

async fn data_key_count(db: &Db) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM tenant_data_keys")
        .fetch_one(db.reader())
        .await?)
}

/// Writes a new KEK to `path`, readable by its owner only; if another process wrote one first,
/// that one is read instead.
fn create_kek_file(path: &Path) -> Result<Kek, String> {
    use std::io::Write;
    let shown = path.display();
    let text = Kek::generate();
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&tmp)
            .map_err(|e| format!("cannot create the key-encryption key file {shown}: {e}"))?;
        file.write_all(format!("{text}\n").as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("cannot write the key-encryption key file {shown}: {e}"))?;
    }
    // A link fails if the file exists: two processes starting at once keep one key.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::warn!(file = %shown, "created a key-encryption key for the secrets at rest: keep it apart from the database's backups, and give it to every node");
            Kek::parse(&text)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
            Kek::parse(&text).map_err(|e| format!("{shown}: {e}"))
        }
        Err(e) => Err(format!(
            "cannot create the key-encryption key file {shown}: {e}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> Kek {
        Kek::parse(&Kek::generate()).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_its_context() {
        let key = aes_key(&[7u8; 32]).unwrap();
        let aad = secret_aad("ten_1", "webhook_endpoint:ep_1");
        let sealed = seal_with(&key, &aad, b"whsec_abc");
        assert_eq!(
            open_with(&key, &aad, &sealed).as_deref(),
            Some(&b"whsec_abc"[..])
        );
        assert_ne!(
            sealed,
            seal_with(&key, &aad, b"whsec_abc"),
            "a fresh nonce each time"
        );
        assert!(open_with(&key, &secret_aad("ten_2", "webhook_endpoint:ep_1"), &sealed).is_none());
        assert!(open_with(&key, &secret_aad("ten_1", "webhook_endpoint:ep_2"), &sealed).is_none());
        assert!(open_with(&aes_key(&[8u8; 32]).unwrap(), &aad, &sealed).is_none());
        let mut changed = sealed.clone();
        changed[NONCE_LEN] ^= 1;
        assert!(open_with(&key, &aad, &changed).is_none());
        assert!(open_with(&key, &aad, &sealed[..10]).is_none());
    }

    #[test]
    fn a_kek_is_32_bytes_of_base64_and_named_without_being_shown() {
        let text = Kek::generate();
        let a = Kek::parse(&text).unwrap();
        assert_eq!(a.id().len(), 16);
        assert_eq!(Kek::parse(&format!("{text}\n")).unwrap().id(), a.id());
        assert!(!text.contains(a.id()));
        assert_ne!(kek().id(), a.id());
        assert!(Kek::parse("not base64!").is_err());
        assert!(Kek::parse(&STANDARD.encode([1u8; 16])).is_err());
        assert!(!format!("{a:?}").contains(&text));
    }
}
