//! Contact details, parsed and normalised so that the same complainant is recognised however
//! a channel wrote the number or address.

use std::fmt;

use redress_proto::v1::ContactKind;

#[derive(Clone, PartialEq, Eq)]
pub enum Contact {
    /// Digits only; a leading `+` keeps an explicit country code. Chinese mobiles are stored
    /// without the +86 prefix so "+86 138…" and "138…" match.
    Phone(String),
    /// Lower-cased address.
    Email(String),
    /// Trimmed, with runs of whitespace collapsed.
    Other(String),
}

// Contact details never reach a log line, even by accident.
impl fmt::Debug for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Contact::Phone(_) => "Phone",
            Contact::Email(_) => "Email",
            Contact::Other(_) => "Other",
        };
        write!(f, "{kind}(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactError {
    Missing,
    Malformed(&'static str),
}

impl Contact {
    pub fn parse(kind: ContactKind, raw: &str) -> Result<Self, ContactError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(ContactError::Missing);
        }
        let kind = match kind {
            ContactKind::Unspecified => infer_kind(raw),
            k => k,
        };
        match kind {
            ContactKind::Phone => parse_phone(raw).map(Contact::Phone),
            ContactKind::Email => parse_email(raw).map(Contact::Email),
            _ => parse_other(raw).map(Contact::Other),
        }
    }

    pub fn kind(&self) -> ContactKind {
        match self {
            Contact::Phone(_) => ContactKind::Phone,
            Contact::Email(_) => ContactKind::Email,
            Contact::Other(_) => ContactKind::Other,
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Contact::Phone(v) | Contact::Email(v) | Contact::Other(v) => v,
        }
    }

    /// The string the complainant hash is computed from.
    pub fn matching_key(&self) -> String {
        match self {
            Contact::Phone(v) => format!("phone:{v}"),
            Contact::Email(v) => format!("email:{v}"),
            Contact::Other(v) => format!("other:{}", v.to_lowercase()),
        }
    }
}

/// Guesses the kind when a channel did not say: `name@domain.tld` makes an e-mail address
/// (a handle such as `weibo:@name` does not), a string of
/// digits and phone punctuation a phone number.
pub fn infer_kind(raw: &str) -> ContactKind {
    let raw = raw.trim();
    let looks_like_email = raw.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && !local.contains(':') && domain.contains('.')
    });
    if looks_like_email {
        ContactKind::Email
    } else if raw.chars().filter(char::is_ascii_digit).count() >= 5
        && raw
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
    {
        ContactKind::Phone
    } else {
        ContactKind::Other
    }
}

fn parse_phone(raw: &str) -> Result<String, ContactError> {
    if !raw
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_digit() || " -().".contains(c) || (c == '+' && i == 0))
    {
        return Err(ContactError::Malformed(
            "a phone number may hold only digits, spaces, - ( ) . and a leading +",
        ));
    }
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    if !(5..=20).contains(&digits.len()) {
        return Err(ContactError::Malformed("a phone number has 5 to 20 digits"));
    }
    let digits = if raw.starts_with('+') {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_string()
    } else {
        return Ok(digits);
    };
    match digits.strip_prefix("86") {
        Some(mobile) if mobile.len() == 11 && mobile.starts_with('1') => Ok(mobile.to_string()),
        _ => Ok(format!("+{digits}")),
    }
}

fn parse_email(raw: &str) -> Result<String, ContactError> {
    const WHY: &str = "an e-mail address looks like name@example.com";
    if raw.len() > 254 || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ContactError::Malformed(WHY));
    }
    let (local, domain) = raw.split_once('@').ok_or(ContactError::Malformed(WHY))?;
    if local.is_empty() || local.len() > 64 || domain.contains('@') {
        return Err(ContactError::Malformed(WHY));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err(ContactError::Malformed(WHY));
    }
    Ok(raw.to_lowercase())
}

fn parse_other(raw: &str) -> Result<String, ContactError> {
    if raw.chars().any(char::is_control) {
        return Err(ContactError::Malformed("contact holds control characters"));
    }
    let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() > 200 {
        return Err(ContactError::Malformed(
            "contact is longer than 200 characters",
        ));
    }
    Ok(collapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(s: &str) -> Result<Contact, ContactError> {
        Contact::parse(ContactKind::Phone, s)
    }

    #[test]
    fn the_same_mobile_written_three_ways_matches() {
        let a = phone("+86 138-0013-8000").unwrap();
        let b = phone("13800138000").unwrap();
        let c = phone("0086 13800138000").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(a.matching_key(), "phone:13800138000");
        assert_eq!(phone("+44 20 7946 0958").unwrap().value(), "+442079460958");
    }

    #[test]
    fn bad_phones_are_refused() {
        assert_eq!(phone(""), Err(ContactError::Missing));
        assert!(matches!(phone("12a45678"), Err(ContactError::Malformed(_))));
        assert!(matches!(phone("1234"), Err(ContactError::Malformed(_))));
        assert!(matches!(
            phone("1+2345678"),
            Err(ContactError::Malformed(_))
        ));
    }

    #[test]
    fn emails_are_checked_and_lower_cased() {
        let e = |s| Contact::parse(ContactKind::Email, s);
        assert_eq!(
            e(" Li.Wei@Example.COM ").unwrap().value(),
            "li.wei@example.com"
        );
        for bad in [
            "li.wei",
            "@example.com",
            "li@",
            "li@example",
            "li wei@example.com",
            "a@b@c.com",
            "li@-x.com",
        ] {
            assert!(matches!(e(bad), Err(ContactError::Malformed(_))), "{bad}");
        }
    }

    #[test]
    fn kind_is_inferred_when_unspecified() {
        assert_eq!(infer_kind("li@example.com"), ContactKind::Email);
        assert_eq!(infer_kind("+86 138 0013 8000"), ContactKind::Phone);
        assert_eq!(infer_kind("weibo:@zhangsan"), ContactKind::Other);
    }

    #[test]
    fn debug_never_shows_the_value() {
        let c = phone("13800138000").unwrap();
        assert!(!format!("{c:?}").contains("138"));
    }
}
