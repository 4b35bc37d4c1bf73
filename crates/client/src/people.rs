//! People who act in commands (department members, approvers) sign every command with a key
//! of their own, and the services take the person from the verified signature, never from
//! the body: naming someone else in `actor` or `approver` achieves nothing.
//!
//! A person's public key sits in the `<ROOT>_PEOPLE` key-value bucket, which only the
//! stack's administrator may write. Issuing a key registers it (replacing any earlier one, so
//! re-issuing is also how a lost key is retired); revoking deletes it, and every command
//! signed with it is refused from then on. Keys are NATS nkeys (Ed25519, user prefix): the
//! seed `SU…` stays with the person, the public key `U…` goes into the bucket; both carry a
//! checksum, so a mistyped key is refused rather than silently wrong.
//!
//! The signature covers the subject and the body, so a signed command cannot be replayed to
//! another department or altered; sending the same bytes again is harmless because every
//! command is idempotent by its id.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_nats::HeaderMap;
use async_nats::jetstream;
use redress_proto::subjects::{Subjects, headers};

use crate::{Client, ClientError};

#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    #[error(
        "{0:?} is not a person's name (1–100 of A–Z a–z 0–9 . _ -, not starting or ending in .)"
    )]
    Name(String),
    #[error("not a person's key: {0}")]
    Key(String),
    #[error("the signature does not verify")]
    Signature,
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
}

/// Whether `name` can name a person (it is a key of the people bucket).
pub fn is_person_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
}

/// What a person signs: a domain tag, the subject and the body.
fn signing_input(subject: &str, payload: &[u8]) -> Vec<u8> {
    [
        b"redress-person-v1\n".as_slice(),
        subject.as_bytes(),
        b"\n",
        payload,
    ]
    .concat()
}

/// One person's signing key.
#[derive(Clone)]
pub struct PersonKey {
    name: String,
    pair: Arc<nkeys::KeyPair>,
}

impl std::fmt::Debug for PersonKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the seed.
        f.debug_struct("PersonKey")
            .field("name", &self.name)
            .field("public_key", &self.public_key())
            .finish()
    }
}

impl PersonKey {
    /// A fresh random key for `name`.
    pub fn generate(name: &str) -> Result<Self, PeopleError> {
        if !is_person_name(name) {
            return Err(PeopleError::Name(name.to_string()));
        }
        Ok(Self {
            name: name.to_string(),
            pair: Arc::new(nkeys::KeyPair::new_user()),
        })
    }

    pub fn from_seed(name: &str, seed: &str) -> Result<Self, PeopleError> {
        if !is_person_name(name) {
            return Err(PeopleError::Name(name.to_string()));
        }
        let pair =
            nkeys::KeyPair::from_seed(seed.trim()).map_err(|e| PeopleError::Key(e.to_string()))?;
        if !pair.public_key().starts_with('U') {
            return Err(PeopleError::Key("not a user seed (SU…)".into()));
        }
        Ok(Self {
            name: name.to_string(),
            pair: Arc::new(pair),
        })
    }

    /// Parses a key file: `<name> <seed>` on its first line that is not a `#` comment.
    pub fn parse(text: &str) -> Result<Self, PeopleError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or_else(|| PeopleError::Key("empty key file".into()))?;
        let (name, seed) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| PeopleError::Key("expected `<name> <seed>`".into()))?;
        Self::from_seed(name, seed)
    }

    pub fn read(path: &Path) -> Result<Self, PeopleError> {
        let text = std::fs::read_to_string(path).map_err(|e| PeopleError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text)
    }

    /// The text of this key's file (secret: whoever holds it acts as the person).
    pub fn to_file_text(&self) -> String {
        format!(
            "# Redress person key of {name}. Keep it secret: it acts as {name}.\n{name} {seed}\n",
            name = self.name,
            seed = self
                .pair
                .seed()
                .expect("a generated or parsed key has its seed"),
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn public_key(&self) -> String {
        self.pair.public_key()
    }

    /// Adds this person's name and signature over `subject` and `payload` to `headers`.
    pub fn sign(&self, subject: &str, payload: &[u8], headers: &mut HeaderMap) {
        let signature = self
            .pair
            .sign(&signing_input(subject, payload))
            .expect("a key with a seed signs");
        headers.insert(headers::PERSON, self.name.as_str());
        headers.insert(headers::PERSON_SIGNATURE, hex::encode(signature).as_str());
    }
}

/// Checks that `signature_hex` is `public_key`'s signature over `subject` and `payload`.
pub fn verify(
    public_key: &str,
    subject: &str,
    payload: &[u8],
    signature_hex: &str,
) -> Result<(), PeopleError> {
    let pair = nkeys::KeyPair::from_public_key(public_key.trim())
        .map_err(|e| PeopleError::Key(e.to_string()))?;
    let signature = hex::decode(signature_hex.trim()).map_err(|_| PeopleError::Signature)?;
    pair.verify(&signing_input(subject, payload), &signature)
        .map_err(|_| PeopleError::Signature)
}

/// The keys a client signs with, by person.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    keys: HashMap<String, PersonKey>,
}

impl Keyring {
    pub fn insert(&mut self, key: PersonKey) {
        self.keys.insert(key.name.clone(), key);
    }

    pub fn get(&self, name: &str) -> Option<&PersonKey> {
        self.keys.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &PersonKey> {
        self.keys.values()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Every `*.key` file of `dir` (none if it does not exist).
    pub fn load_dir(dir: &Path) -> Result<Self, PeopleError> {
        let mut ring = Self::default();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(ring);
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "key") {
                ring.insert(PersonKey::read(&path)?);
            }
        }
        Ok(ring)
    }
}

/// Read access to the people bucket, as the services use it to verify signatures.
#[derive(Clone)]
pub struct Registry {
    js: jetstream::Context,
    bucket: String,
    store: Arc<tokio::sync::OnceCell<jetstream::kv::Store>>,
}

impl Registry {
    pub fn new(nats: async_nats::Client, subjects: &Subjects) -> Self {
        Self {
            js: jetstream::new(nats),
            bucket: subjects.people_bucket(),
            store: Arc::default(),
        }
    }

    async fn store(&self) -> Result<&jetstream::kv::Store, String> {
        self.store
            .get_or_try_init(|| async {
                self.js
                    .get_key_value(&self.bucket)
                    .await
                    .map_err(|e| format!("people bucket {}: {e}", self.bucket))
            })
            .await
    }

    /// The public key registered for `name`, if any. `Err` when the registry cannot be read
    /// (the bucket missing counts as nobody registered).
    pub async fn public_key(&self, name: &str) -> Result<Option<String>, String> {
        if !is_person_name(name) {
            return Ok(None);
        }
        let store = match self.store().await {
            Ok(s) => s,
            Err(e) if e.contains("not found") => return Ok(None),
            Err(e) => return Err(e),
        };
        let value = store.get(name).await.map_err(|e| e.to_string())?;
        Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}

impl Client {
    /// The people bucket, made if missing; within the client's timeout (a credential that
    /// may not touch the bucket gets no answer at all, only silence).
    async fn people_store(&self) -> Result<jetstream::kv::Store, ClientError> {
        tokio::time::timeout(self.timeout, self.open_people_store())
            .await
            .map_err(|_| {
                ClientError::People(format!(
                    "the people bucket did not answer within {:?}: are these the administrator's credentials?",
                    self.timeout
                ))
            })?
    }

    async fn open_people_store(&self) -> Result<jetstream::kv::Store, ClientError> {
        let bucket = self.subjects.people_bucket();
        if let Ok(store) = self.js.get_key_value(&bucket).await {
            return Ok(store);
        }
        let stream =
            crate::kv_bucket_stream(&bucket, "Public keys of the people who act in commands", 5);
        self.js
            .get_or_create_stream(stream)
            .await
            .map_err(|e| ClientError::People(format!("create {bucket}: {e}")))?;
        self.js
            .get_key_value(&bucket)
            .await
            .map_err(|e| ClientError::People(format!("open {bucket}: {e}")))
    }

    /// Registers `key`'s public key for its person, replacing any earlier key (which stops
    /// working at once). Needs the administrator's credentials.
    pub async fn register_person(&self, key: &PersonKey) -> Result<(), ClientError> {
        self.people_store()
            .await?
            .put(key.name(), key.public_key().into_bytes().into())
            .await
            .map_err(|e| ClientError::People(format!("register {}: {e}", key.name())))?;
        Ok(())
    }

    /// Removes `name`'s key: commands signed by it are refused from now on. Whether the
    /// person had a key.
    pub async fn revoke_person(&self, name: &str) -> Result<bool, ClientError> {
        if !is_person_name(name) {
            return Err(ClientError::People(
                PeopleError::Name(name.into()).to_string(),
            ));
        }
        let store = self.people_store().await?;
        let had = store
            .get(name)
            .await
            .map_err(|e| ClientError::People(e.to_string()))?
            .is_some();
        store
            .delete(name)
            .await
            .map_err(|e| ClientError::People(format!("revoke {name}: {e}")))?;
        Ok(had)
    }

    /// Every person with a registered key, and the key, sorted by name.
    pub async fn people(&self) -> Result<Vec<(String, String)>, ClientError> {
        use futures::TryStreamExt as _;
        let store = self.people_store().await?;
        let names: Vec<String> = match store.keys().await {
            Ok(keys) => keys
                .try_collect()
                .await
                .map_err(|e| ClientError::People(e.to_string()))?,
            Err(e) => return Err(ClientError::People(e.to_string())),
        };
        let mut out = Vec::new();
        for name in names {
            if let Some(v) = store
                .get(&name)
                .await
                .map_err(|e| ClientError::People(e.to_string()))?
            {
                out.push((name, String::from_utf8_lossy(&v).into_owned()));
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_for_its_subject_and_body_only() {
        let key = PersonKey::generate("zhao.min").unwrap();
        let mut h = HeaderMap::new();
        key.sign("r.cmd.approval.decide", b"body", &mut h);
        let sig = h.get(headers::PERSON_SIGNATURE).unwrap().as_str();
        assert_eq!(h.get(headers::PERSON).unwrap().as_str(), "zhao.min");
        let public = key.public_key();
        verify(&public, "r.cmd.approval.decide", b"body", sig).unwrap();
        assert!(verify(&public, "r.cmd.approval.decide", b"bodx", sig).is_err());
        assert!(verify(&public, "r.cmd.routing.accept.finance", b"body", sig).is_err());
        let other = PersonKey::generate("zhao.min").unwrap().public_key();
        assert!(verify(&other, "r.cmd.approval.decide", b"body", sig).is_err());
        assert!(verify(&public, "r.cmd.approval.decide", b"body", "zz").is_err());
    }

    #[test]
    fn a_key_file_round_trips_and_debug_hides_the_seed() {
        let key = PersonKey::generate("li.na").unwrap();
        let text = key.to_file_text();
        let back = PersonKey::parse(&text).unwrap();
        assert_eq!(back.name(), "li.na");
        assert_eq!(back.public_key(), key.public_key());
        let seed = text.lines().last().unwrap().split_once(' ').unwrap().1;
        assert!(seed.starts_with("SU"));
        assert!(!format!("{key:?}").contains(seed));
        assert!(PersonKey::parse("li.na not-a-seed").is_err());
        assert!(PersonKey::parse(&format!("a b\n{}", "")).is_err());
    }

    #[test]
    fn names_are_bucket_keys() {
        for ok in ["zhao.min", "li-na", "w_3"] {
            assert!(is_person_name(ok), "{ok}");
        }
        for bad in ["", ".a", "a.", "a..b", "a b", "a*", "a>", &"x".repeat(101)] {
            assert!(!is_person_name(bad), "{bad}");
        }
    }
}
