//! Where uploaded documents are kept: an object store (the `object_store` crate), a local
//! folder by default or S3-compatible storage by configuration.
//!
//! `document_store` is either a folder (`./omnirail-documents`, created if missing; files are
//! fsynced before an upload is acknowledged) or `s3://bucket[/prefix]`, whose credentials,
//! region and endpoint come from the standard `AWS_*` environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT` for an
//! S3-compatible service, `AWS_ALLOW_HTTP=true` for one without TLS). Secrets never enter
//! Omnirail's own configuration, so they cannot reach its logs.

use std::sync::Arc;

use axum::body::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// The document store of a process.
#[derive(Clone)]
pub struct Documents {
    store: Arc<dyn ObjectStore>,
    /// Where, for logs: the folder or the `s3://` URL (which carries no secret).
    location: String,
}

impl std::fmt::Debug for Documents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Documents")
            .field("location", &self.location)
            .finish()
    }
}

impl Documents {
    /// Opens the store `location` names; an unusable location is an error at start, not at
    /// the first upload.
    pub fn open(location: &str) -> Result<Self, String> {
        let store: Arc<dyn ObjectStore> = if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            // Without a region the S3 client would quietly assume us-east-1: a bank's documents
            // must not go to a region nobody chose.
            let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
                .iter()
                .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()));
            if !region {
                return Err(format!(
                    "document_store {location}: no region; set AWS_REGION (or AWS_DEFAULT_REGION)"
                ));
            }
            let s3 = AmazonS3Builder::from_env()
                .with_url(format!("s3://{bucket}"))
                .build()
                .map_err(|e| format!("document_store {location}: {e}"))?;
            let prefix = prefix.trim_matches('/');
            if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(PrefixStore::new(s3, prefix))
            }
        } else {
            let folder = location.strip_prefix("file://").unwrap_or(location);
            std::fs::create_dir_all(folder).map_err(|e| format!("document_store {folder}: {e}"))?;
            let local = LocalFileSystem::new_with_prefix(folder)
                .map_err(|e| format!("document_store {folder}: {e}"))?
                .with_fsync(true);
            Arc::new(local)
        };
        Ok(Self {
            store,
            location: location.to_owned(),
        })
    }

    /// Stores `bytes` under `key`, whole or not at all.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), object_store::Error> {
        self.store
            .put(&Path::from(key), PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
    }

    /// Removes what is stored under `key` (nothing there is not an error).
    pub async fn delete(&self, key: &str) -> Result<(), object_store::Error> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The stored bytes under `key`, as a stream.
    pub async fn get(
        &self,
        key: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, std::io::Error>>, object_store::Error> {
        let got = self.store.get(&Path::from(key)).await?;
        Ok(got.into_stream().map_err(std::io::Error::other).boxed())
    }

    pub fn location(&self) -> &str {
        &self.location
    }
}
