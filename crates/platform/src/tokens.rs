//! Tokens that invite a complainant to answer (a survey, an evidence request): 256 random
//! bits, sent only to the complainant; services keep the SHA-256 and compare hashes.

/// Tokens are 64 hex digits; anything much longer is not one.
pub const MAX_TOKEN_BYTES: usize = 128;

/// A fresh token and the hash that is stored instead of it.
pub fn new_token() -> (String, Vec<u8>) {
    let token = hex::encode(rand::random::<[u8; 32]>());
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.trim().as_bytes()).to_vec()
}

/// Whether `token` is the one whose hash was stored. Compared as hashes, so the time taken
/// tells nothing about the token.
pub fn token_matches(token: &str, stored: Option<&[u8]>) -> bool {
    stored.is_some_and(|h| h == token_hash(token).as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_matches_its_own_hash_only() {
        let (token, hash) = new_token();
        assert_eq!(token.len(), 64);
        assert!(token_matches(&token, Some(&hash)));
        assert!(token_matches(&format!(" {token}\n"), Some(&hash)));
        let (other, _) = new_token();
        assert!(!token_matches(&other, Some(&hash)));
        assert!(!token_matches(&token, None));
    }
}
