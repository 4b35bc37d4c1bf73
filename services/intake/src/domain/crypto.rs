//! Contact details are encrypted at rest with AES-256-GCM (a fresh random nonce per value,
//! the complaint id as associated data so a ciphertext cannot be moved to another row), and
//! complainants are matched by a keyed hash, so the database alone reveals neither.
//!
//! Every sealed value names the key that sealed it (format 2: `[2][key id, u16 BE][nonce]
//! [ciphertext]`), so the master key can rotate: new values are sealed with the current
//! key, old ones stay readable with the retired keys kept by id until `redress ops rekey`
//! has re-sealed them. Format 1 (`[1][nonce][ciphertext]`, before key ids) reads as key 0.
//! The keyed hash and the status secrets derive from one key chosen by id (`ref_key_id`),
//! so rotating the encryption key does not break repeat matching or secrets already given.
//!
//! Each complaint's name and contact are sealed with a data key of its own (format 3), and
//! only that key is sealed with the master key (stored apart, in `complaint_keys`): erasing
//! a complaint destroys its data key, after which no copy of the sealed values, backups
//! included, can be opened; rotating the master key re-seals the small data keys only.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const FORMAT_V1: u8 = 1;
const FORMAT_V2: u8 = 2;
/// Sealed with the complaint's own data key: `[3][nonce][ciphertext]`.
const FORMAT_DATA_KEY: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("intake.contact_key must be 64 hex characters (32 bytes)")]
    BadKey,
    #[error("a stored contact could not be decrypted (wrong key or damaged data)")]
    Decrypt,
    #[error("a stored value was sealed with key {0}, which is not configured")]
    UnknownKey(u16),
}

#[derive(Clone)]
pub struct ContactCipher {
    /// The key new values are sealed with, and its id.
    current: u16,
    aead: Aes256Gcm,
    /// Retired keys, still read.
    retired: std::collections::BTreeMap<u16, Aes256Gcm>,
    hash_key: [u8; 32],
    secret_key: [u8; 32],
}

fn key_bytes(hex_key: &str) -> Result<Vec<u8>, CryptoError> {
    let bytes = hex::decode(hex_key.trim()).map_err(|_| CryptoError::BadKey)?;
    if bytes.len() != 32 {
        return Err(CryptoError::BadKey);
    }
    Ok(bytes)
}

fn derive(key: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

impl std::fmt::Debug for ContactCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContactCipher(<key>)")
    }
}

impl ContactCipher {
    /// One key, id 0: what a deployment has before its first rotation.
    pub fn from_hex(key: &str) -> Result<Self, CryptoError> {
        Self::with_keys(0, key, &std::collections::BTreeMap::new(), 0)
    }

    /// The current key `current_id` = `current`, retired keys by id, and the id of the key
    /// the hash and the status secrets derive from (the current or a retired one).
    pub fn with_keys(
        current_id: u16,
        current: &str,
        retired: &std::collections::BTreeMap<u16, String>,
        ref_key_id: u16,
    ) -> Result<Self, CryptoError> {
        let bytes = key_bytes(current)?;
        let aead = Aes256Gcm::new_from_slice(&bytes).map_err(|_| CryptoError::BadKey)?;
        let mut old = std::collections::BTreeMap::new();
        let mut ref_key = (ref_key_id == current_id).then(|| bytes.clone());
        for (id, hex_key) in retired {
            let b = key_bytes(hex_key)?;
            old.insert(
                *id,
                Aes256Gcm::new_from_slice(&b).map_err(|_| CryptoError::BadKey)?,
            );
            if *id == ref_key_id {
                ref_key = Some(b);
            }
        }
        let ref_key = ref_key.ok_or(CryptoError::UnknownKey(ref_key_id))?;
        // Separate keys for hashing and secrets, so neither reuses an encryption key.
        Ok(Self {
            current: current_id,
            aead,
            retired: old,
            hash_key: derive(&ref_key, b"redress-complainant-ref"),
            secret_key: derive(&ref_key, b"redress-status-secret"),
        })
    }

    /// The id of the key new values are sealed with.
    pub fn current_key_id(&self) -> u16 {
        self.current
    }

    /// The id of the key that sealed `sealed` (format 1: key 0).
    pub fn key_id_of(sealed: &[u8]) -> Option<u16> {
        match sealed.first() {
            Some(&FORMAT_V1) => Some(0),
            Some(&FORMAT_V2) if sealed.len() >= 3 => {
                Some(u16::from_be_bytes([sealed[1], sealed[2]]))
            }
            _ => None,
        }
    }

    fn key(&self, id: u16) -> Result<&Aes256Gcm, CryptoError> {
        if id == self.current {
            Ok(&self.aead)
        } else {
            self.retired.get(&id).ok_or(CryptoError::UnknownKey(id))
        }
    }

    pub fn seal(&self, plaintext: &str, aad: &[u8]) -> Vec<u8> {
        self.seal_bytes(plaintext.as_bytes(), aad)
    }

    /// Seals arbitrary bytes (a dead-lettered submission, which may hold a contact).
    pub fn seal_bytes(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let nonce: [u8; 12] = rand::random();
        let ciphertext = self
            .aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("encryption of in-memory data cannot fail");
        let mut out = Vec::with_capacity(3 + 12 + ciphertext.len());
        out.push(FORMAT_V2);
        out.extend_from_slice(&self.current.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<String, CryptoError> {
        String::from_utf8(self.open_bytes(sealed, aad)?).map_err(|_| CryptoError::Decrypt)
    }

    pub fn open_bytes(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (id, body) = match sealed.first() {
            Some(&FORMAT_V1) => (0, &sealed[1..]),
            Some(&FORMAT_V2) if sealed.len() >= 3 => {
                (u16::from_be_bytes([sealed[1], sealed[2]]), &sealed[3..])
            }
            _ => return Err(CryptoError::Decrypt),
        };
        if body.len() < 12 {
            return Err(CryptoError::Decrypt);
        }
        self.key(id)?
            .decrypt(
                Nonce::from_slice(&body[..12]),
                Payload {
                    msg: &body[12..],
                    aad,
                },
            )
            .map_err(|_| CryptoError::Decrypt)
    }

    /// A fresh data key for one complaint, and the same sealed with the current master key
    /// (bound to the complaint's id) for storage.
    pub fn new_data_key(&self, complaint_id: &uuid::Uuid) -> (DataKey, Vec<u8>) {
        let bytes: [u8; 32] = rand::random();
        let wrapped = self.seal_bytes(&bytes, complaint_id.as_bytes());
        (DataKey::from_bytes(&bytes), wrapped)
    }

    /// The data key `wrapped` holds, for the complaint `complaint_id`.
    pub fn data_key(
        &self,
        wrapped: &[u8],
        complaint_id: &uuid::Uuid,
    ) -> Result<DataKey, CryptoError> {
        let bytes: [u8; 32] = self
            .open_bytes(wrapped, complaint_id.as_bytes())?
            .try_into()
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(DataKey::from_bytes(&bytes))
    }

    /// `sealed` sealed again with the current key, or `None` when it already is.
    pub fn reseal(&self, sealed: &[u8], aad: &[u8]) -> Result<Option<Vec<u8>>, CryptoError> {
        if Self::key_id_of(sealed) == Some(self.current) && sealed[0] == FORMAT_V2 {
            return Ok(None);
        }
        let plain = self.open_bytes(sealed, aad)?;
        Ok(Some(self.seal_bytes(&plain, aad)))
    }

    /// Equal for equal inputs under the same key; useless without the key.
    pub fn complainant_ref(&self, matching_key: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.hash_key).expect("any key length");
        mac.update(matching_key.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

impl ContactCipher {
    /// The secret a complainant presents with their ticket to follow it: derived from the
    /// complaint id under the key, so it is the same on every resend and nothing is stored.
    pub fn status_secret(&self, complaint_id: &uuid::Uuid) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.secret_key).expect("any key length");
        mac.update(complaint_id.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// Whether `secret` is `complaint_id`'s, compared in constant time.
    pub fn check_status_secret(&self, complaint_id: &uuid::Uuid, secret: &str) -> bool {
        let Ok(given) = hex::decode(secret.trim()) else {
            return false;
        };
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.secret_key).expect("any key length");
        mac.update(complaint_id.as_bytes());
        mac.verify_truncated_left(&given).is_ok() && given.len() == 16
    }
}

/// One complaint's own key for its personal data, and the text key derived from it.
#[derive(Clone)]
pub struct DataKey(Aes256Gcm, [u8; 32]);

/// Separates the text key from the data key it is derived from: the text key is handed to
/// other services through the text-key bucket, and must not open the name and contact.
const TEXT_KEY_LABEL: &[u8] = b"redress-text-key-v1";

impl DataKey {
    fn from_bytes(bytes: &[u8; 32]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(bytes).expect("any key length");
        mac.update(TEXT_KEY_LABEL);
        let text: [u8; 32] = mac.finalize().into_bytes().into();
        Self(Aes256Gcm::new_from_slice(bytes).expect("32 bytes"), text)
    }

    /// The bytes of the complaint's text key, as the text-key bucket holds them.
    pub fn text_key_bytes(&self) -> &[u8; 32] {
        &self.1
    }

    /// The key that seals the complaint's text on the event stream.
    pub fn text_key(&self) -> redress_platform::sealed::TextKey {
        redress_platform::sealed::TextKey::from_bytes(&self.1).expect("32 bytes")
    }

    pub fn seal(&self, plaintext: &str, aad: &[u8]) -> Vec<u8> {
        let nonce: [u8; 12] = rand::random();
        let ciphertext = self
            .0
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad,
                },
            )
            .expect("encryption of in-memory data cannot fail");
        let mut out = Vec::with_capacity(1 + 12 + ciphertext.len());
        out.push(FORMAT_DATA_KEY);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<String, CryptoError> {
        if sealed.len() < 13 || sealed[0] != FORMAT_DATA_KEY {
            return Err(CryptoError::Decrypt);
        }
        let plain = self
            .0
            .decrypt(
                Nonce::from_slice(&sealed[1..13]),
                Payload {
                    msg: &sealed[13..],
                    aad,
                },
            )
            .map_err(|_| CryptoError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Decrypt)
    }

    /// Whether `sealed` is in the data-key format (not sealed with a master key directly).
    pub fn sealed_by_data_key(sealed: &[u8]) -> bool {
        sealed.first() == Some(&FORMAT_DATA_KEY)
    }
}

/// The contact key of test deployments: published here, so contacts sealed with it are
/// readable by anyone. Intake refuses it unless `intake.allow_test_key` is set.
pub const WELL_KNOWN_TEST_KEY: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_key_reads_old_values_and_seals_new_ones_under_its_id() {
        let old_key = KEY;
        let new_key = &KEY.replace("00", "ee");
        let before = ContactCipher::from_hex(old_key).unwrap();
        let sealed_old = before.seal("+86 139 0000 1234", b"c-1");
        // A value from before key ids existed (format 1) reads as key 0.
        let mut legacy = vec![FORMAT_V1];
        legacy.extend_from_slice(&sealed_old[3..]);

        let retired = std::collections::BTreeMap::from([(0u16, old_key.to_string())]);
        let after = ContactCipher::with_keys(1, new_key, &retired, 0).unwrap();
        assert_eq!(
            after.open(&sealed_old, b"c-1").unwrap(),
            "+86 139 0000 1234"
        );
        assert_eq!(after.open(&legacy, b"c-1").unwrap(), "+86 139 0000 1234");
        let sealed_new = after.seal("x", b"c-2");
        assert_eq!(ContactCipher::key_id_of(&sealed_new), Some(1));
        assert!(matches!(
            before.open(&sealed_new, b"c-2"),
            Err(CryptoError::UnknownKey(1))
        ));
        // Re-sealing moves old values to the current key, and leaves current ones alone.
        let moved = after.reseal(&legacy, b"c-1").unwrap().unwrap();
        assert_eq!(ContactCipher::key_id_of(&moved), Some(1));
        assert!(after.reseal(&moved, b"c-1").unwrap().is_none());
        let only_new = ContactCipher::with_keys(1, new_key, &Default::default(), 1).unwrap();
        assert_eq!(only_new.open(&moved, b"c-1").unwrap(), "+86 139 0000 1234");
        // The hash and the secrets stay with the reference key across the rotation.
        assert_eq!(before.complainant_ref("a"), after.complainant_ref("a"));
        let id = uuid::Uuid::now_v7();
        assert_eq!(before.status_secret(&id), after.status_secret(&id));
        assert!(ContactCipher::with_keys(1, new_key, &Default::default(), 0).is_err());
    }

    #[test]
    fn a_data_key_opens_its_complaint_only_and_survives_a_master_rotation() {
        let master = ContactCipher::from_hex(KEY).unwrap();
        let (a, b) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let (key, wrapped) = master.new_data_key(&a);
        let sealed = key.seal("13900001234", a.as_bytes());
        assert!(DataKey::sealed_by_data_key(&sealed));
        let again = master.data_key(&wrapped, &a).unwrap();
        assert_eq!(again.open(&sealed, a.as_bytes()).unwrap(), "13900001234");
        // Bound to its complaint: another id cannot unwrap it.
        assert!(master.data_key(&wrapped, &b).is_err());
        let (other, _) = master.new_data_key(&b);
        assert!(other.open(&sealed, a.as_bytes()).is_err());
        // A new master key re-seals the data key; the value itself is untouched.
        let retired = std::collections::BTreeMap::from([(0u16, KEY.to_string())]);
        let rotated = ContactCipher::with_keys(3, &KEY.replace("00", "dd"), &retired, 0).unwrap();
        let rewrapped = rotated.reseal(&wrapped, a.as_bytes()).unwrap().unwrap();
        let only_new =
            ContactCipher::with_keys(3, &KEY.replace("00", "dd"), &Default::default(), 3).unwrap();
        let k = only_new.data_key(&rewrapped, &a).unwrap();
        assert_eq!(k.open(&sealed, a.as_bytes()).unwrap(), "13900001234");
    }

    #[test]
    fn a_status_secret_belongs_to_one_complaint_under_one_key() {
        let c = ContactCipher::from_hex(KEY).unwrap();
        let (a, b) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let s = c.status_secret(&a);
        assert_eq!(s.len(), 32);
        assert_eq!(s, c.status_secret(&a));
        assert!(c.check_status_secret(&a, &s));
        assert!(!c.check_status_secret(&b, &s));
        assert!(!c.check_status_secret(&a, &s[..30]));
        assert!(!c.check_status_secret(&a, ""));
        assert!(!c.check_status_secret(&a, "zz"));
        let other = ContactCipher::from_hex(&KEY.replace("00", "ff")).unwrap();
        assert!(!other.check_status_secret(&a, &s));
    }

    const KEY: &str = WELL_KNOWN_TEST_KEY;

    #[test]
    fn seals_and_opens_and_binds_to_the_row() {
        let c = ContactCipher::from_hex(KEY).unwrap();
        let sealed = c.seal("13800138000", b"row-1");
        assert!(!sealed.windows(11).any(|w| w == b"13800138000"));
        assert_eq!(c.open(&sealed, b"row-1").unwrap(), "13800138000");
        assert!(c.open(&sealed, b"row-2").is_err());
        assert_ne!(
            sealed,
            c.seal("13800138000", b"row-1"),
            "nonces must differ"
        );
    }

    #[test]
    fn another_key_cannot_open_or_match() {
        let a = ContactCipher::from_hex(KEY).unwrap();
        let b = ContactCipher::from_hex(&KEY.replace("00", "ff")).unwrap();
        assert!(b.open(&a.seal("x", b""), b"").is_err());
        assert_ne!(a.complainant_ref("phone:1"), b.complainant_ref("phone:1"));
        assert_eq!(a.complainant_ref("phone:1"), a.complainant_ref("phone:1"));
    }

    #[test]
    fn short_or_non_hex_keys_are_refused() {
        assert!(ContactCipher::from_hex("abcd").is_err());
        assert!(ContactCipher::from_hex(&"zz".repeat(32)).is_err());
    }
}
