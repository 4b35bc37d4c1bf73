//! Complaint text on the event stream, sealed with a key of the complaint's own.
//!
//! The text is what a complainant wrote, names and numbers included, and the event stream
//! keeps it as long as the stream keeps events. A message cannot be changed once stored, so
//! erasure cannot blank it there; instead every event carries the text sealed (AES-256-GCM,
//! bound to the complaint id) under the complaint's *text key*, and the only copy of that
//! key lives in the `<ROOT>_TEXT_KEYS` bucket under the complaint id. Intake writes it
//! (through its outbox, before the `complaint.received` that needs it) and purges it when
//! the complaint is erased; from then on every sealed copy, in the stream, in a service's
//! table or in a backup, is noise, while the rest of each event stays for statistics.
//!
//! Reading needs the bucket: classification (to classify), routing (to show a department its
//! work) and a department's watch. A key that is not there yet (the reader overtook intake's
//! relay) is [`Opened::NotYet`], worth retrying; a purged one is [`Opened::Erased`], final.

use std::sync::Arc;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use async_nats::jetstream::{self, kv};
use redress_proto::subjects::Subjects;

/// First byte of a sealed text: the format, so that a later one can be told apart.
const FORMAT: u8 = 0x54;
const NONCE: usize = 12;

/// A complaint's text key.
#[derive(Clone)]
pub struct TextKey(Aes256Gcm);

impl std::fmt::Debug for TextKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TextKey(..)")
    }
}

/// A sealed text that does not open: damaged, another complaint's, or a foreign format.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the sealed text does not open with the complaint's key")]
pub struct SealError;

impl TextKey {
    pub const LEN: usize = 32;

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        (bytes.len() == Self::LEN).then(|| Self(Aes256Gcm::new_from_slice(bytes).expect("32")))
    }

    /// `text` sealed for the complaint `complaint_id`: `[FORMAT][nonce 12][ciphertext+tag]`.
    pub fn seal(&self, text: &str, complaint_id: &uuid::Uuid) -> Vec<u8> {
        let nonce: [u8; NONCE] = rand::random();
        let ciphertext = self
            .0
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: text.as_bytes(),
                    aad: complaint_id.as_bytes(),
                },
            )
            .expect("encryption of in-memory data cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE + ciphertext.len());
        out.push(FORMAT);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, sealed: &[u8], complaint_id: &uuid::Uuid) -> Result<String, SealError> {
        if sealed.len() < 1 + NONCE || sealed[0] != FORMAT {
            return Err(SealError);
        }
        let plain = self
            .0
            .decrypt(
                Nonce::from_slice(&sealed[1..1 + NONCE]),
                Payload {
                    msg: &sealed[1 + NONCE..],
                    aad: complaint_id.as_bytes(),
                },
            )
            .map_err(|_| SealError)?;
        String::from_utf8(plain).map_err(|_| SealError)
    }
}

/// What became of a complaint's text key.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// Boxed: the expanded cipher is about a kilobyte.
    Key(Box<TextKey>),
    /// Purged: the complaint was erased.
    Erased,
    /// Not in the bucket (yet): intake's relay has not written it, or the bucket is new.
    NotYet,
}

/// What a sealed text turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    Text(String),
    Erased,
    NotYet,
}

/// Errors reading the bucket (the broker, permissions); worth retrying, unlike
/// [`Opened::Erased`].
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("text-key bucket {bucket}: {reason}")]
    Bucket { bucket: String, reason: String },
    #[error(transparent)]
    Sealed(#[from] SealError),
}

/// The stream of a text-key bucket. One value per key: a purge leaves only its marker. A
/// put the relay repeats after a crash is dropped, as on every other stream.
pub fn bucket_stream(bucket: &str) -> jetstream::stream::Config {
    jetstream::stream::Config {
        duplicate_window: std::time::Duration::from_secs(120),
        ..crate::kv_bucket_stream(
            bucket,
            "Each complaint's text key, until the complaint is erased",
            1,
        )
    }
}

/// Read access (and, for intake, purge) to the text-key bucket.
#[derive(Clone)]
pub struct TextKeys {
    js: jetstream::Context,
    bucket: String,
    store: Arc<tokio::sync::OnceCell<kv::Store>>,
}

impl TextKeys {
    pub fn new(nats: async_nats::Client, subjects: &Subjects) -> Self {
        Self {
            js: jetstream::new(nats),
            bucket: subjects.text_keys_bucket(),
            store: Arc::default(),
        }
    }

    fn error(&self, reason: impl std::fmt::Display) -> KeysError {
        KeysError::Bucket {
            bucket: self.bucket.clone(),
            reason: reason.to_string(),
        }
    }

    async fn store(&self) -> Result<Option<&kv::Store>, KeysError> {
        if let Some(s) = self.store.get() {
            return Ok(Some(s));
        }
        match self.js.get_key_value(&self.bucket).await {
            Ok(s) => Ok(Some(self.store.get_or_init(|| async { s }).await)),
            // Nothing written yet: every key is "not yet".
            Err(e) if e.to_string().contains("not found") => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// The text key of `complaint_id`, or what became of it.
    pub async fn lookup(&self, complaint_id: &uuid::Uuid) -> Result<Lookup, KeysError> {
        let Some(store) = self.store().await? else {
            return Ok(Lookup::NotYet);
        };
        let entry = store
            .entry(complaint_id.to_string())
            .await
            .map_err(|e| self.error(e))?;
        Ok(match entry {
            None => Lookup::NotYet,
            // An empty value is a key intake blanked in its outbox before it went out.
            Some(e) if e.operation != kv::Operation::Put || e.value.is_empty() => Lookup::Erased,
            Some(e) => match TextKey::from_bytes(&e.value) {
                Some(k) => Lookup::Key(Box::new(k)),
                None => return Err(self.error(format!("{complaint_id}: not a key"))),
            },
        })
    }

    /// `sealed`, opened with `complaint_id`'s key. An empty `sealed` is an empty text.
    pub async fn open(
        &self,
        sealed: &[u8],
        complaint_id: &uuid::Uuid,
    ) -> Result<Opened, KeysError> {
        if sealed.is_empty() {
            return Ok(Opened::Text(String::new()));
        }
        Ok(match self.lookup(complaint_id).await? {
            Lookup::Key(k) => Opened::Text(k.open(sealed, complaint_id)?),
            Lookup::Erased => Opened::Erased,
            Lookup::NotYet => Opened::NotYet,
        })
    }

    /// Puts `item`'s text and reply in clear (or marks them erased) in place of their sealed
    /// forms. One lookup of the key for both.
    pub async fn open_work_item(
        &self,
        item: &mut redress_proto::v1::WorkItem,
        complaint_id: &uuid::Uuid,
    ) -> Result<(), KeysError> {
        let text = std::mem::take(&mut item.sealed_text);
        let reply = std::mem::take(&mut item.sealed_reply);
        if text.is_empty() && reply.is_empty() {
            return Ok(());
        }
        match self.lookup(complaint_id).await? {
            Lookup::Key(key) => {
                if !text.is_empty() {
                    item.text = key.open(&text, complaint_id)?;
                }
                if !reply.is_empty() {
                    item.reply = key.open(&reply, complaint_id)?;
                }
            }
            Lookup::Erased => {
                item.text.clear();
                item.reply.clear();
                item.text_erased = true;
            }
            // Not written yet: empty now, the whole text on the next look.
            Lookup::NotYet => {}
        }
        Ok(())
    }

    /// Destroys `complaint_id`'s key: every value of it leaves the bucket, a purge marker
    /// stays. Needs intake's (or the administrator's) credentials.
    pub async fn purge(&self, complaint_id: &uuid::Uuid) -> Result<(), KeysError> {
        let store = match self.store().await? {
            Some(s) => s,
            None => {
                self.js
                    .get_or_create_stream(bucket_stream(&self.bucket))
                    .await
                    .map_err(|e| self.error(e))?;
                self.store().await?.ok_or_else(|| self.error("not made"))?
            }
        };
        store
            .purge(complaint_id.to_string())
            .await
            .map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_text_opens_for_its_complaint_only() {
        let key = TextKey::from_bytes(&[7u8; 32]).unwrap();
        let id = uuid::Uuid::new_v4();
        let sealed = key.seal("快递丢了，电话 13800138000", &id);
        assert!(!String::from_utf8_lossy(&sealed).contains("13800138000"));
        assert_eq!(
            key.open(&sealed, &id).unwrap(),
            "快递丢了，电话 13800138000"
        );
        assert_eq!(key.open(&sealed, &uuid::Uuid::new_v4()), Err(SealError));
        let other = TextKey::from_bytes(&[8u8; 32]).unwrap();
        assert_eq!(other.open(&sealed, &id), Err(SealError));
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(key.open(&flipped, &id), Err(SealError));
        assert_eq!(key.open(&sealed[..5], &id), Err(SealError));
    }

    #[test]
    fn only_32_bytes_make_a_key() {
        assert!(TextKey::from_bytes(&[0u8; 31]).is_none());
        assert!(TextKey::from_bytes(&[0u8; 33]).is_none());
    }
}
