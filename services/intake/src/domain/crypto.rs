//! Contact details are encrypted at rest with AES-256-GCM (a fresh random nonce per value,
//! the complaint id as associated data so a ciphertext cannot be moved to another row), and
//! complainants are matched by a keyed hash, so the database alone reveals neither.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const FORMAT_V1: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("intake.contact_key must be 64 hex characters (32 bytes)")]
    BadKey,
    #[error("a stored contact could not be decrypted (wrong key or damaged data)")]
    Decrypt,
}

#[derive(Clone)]
pub struct ContactCipher {
    aead: Aes256Gcm,
    hash_key: [u8; 32],
    secret_key: [u8; 32],
}

impl std::fmt::Debug for ContactCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContactCipher(<key>)")
    }
}

impl ContactCipher {
    pub fn from_hex(key: &str) -> Result<Self, CryptoError> {
        let bytes = hex::decode(key.trim()).map_err(|_| CryptoError::BadKey)?;
        if bytes.len() != 32 {
            return Err(CryptoError::BadKey);
        }
        let aead = Aes256Gcm::new_from_slice(&bytes).map_err(|_| CryptoError::BadKey)?;
        // A separate key for hashing, so the hash never reuses the encryption key directly.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&bytes).expect("any key length");
        mac.update(b"redress-complainant-ref");
        let hash_key = mac.finalize().into_bytes().into();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&bytes).expect("any key length");
        mac.update(b"redress-status-secret");
        let secret_key = mac.finalize().into_bytes().into();
        Ok(Self {
            aead,
            hash_key,
            secret_key,
        })
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
        let mut out = Vec::with_capacity(1 + 12 + ciphertext.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<String, CryptoError> {
        String::from_utf8(self.open_bytes(sealed, aad)?).map_err(|_| CryptoError::Decrypt)
    }

    pub fn open_bytes(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < 13 || sealed[0] != FORMAT_V1 {
            return Err(CryptoError::Decrypt);
        }
        let plain = self
            .aead
            .decrypt(
                Nonce::from_slice(&sealed[1..13]),
                Payload {
                    msg: &sealed[13..],
                    aad,
                },
            )
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(plain)
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

/// The contact key of test deployments: published here, so contacts sealed with it are
/// readable by anyone. Intake refuses it unless `intake.allow_test_key` is set.
pub const WELL_KNOWN_TEST_KEY: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

#[cfg(test)]
mod tests {
    use super::*;

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
