//! Values every service speaks of, typed once: complaint and work ids (UUIDs on the wire as
//! text, `uuid` in every schema) and money (whole minor units with a currency, one format).

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// A complaint's id, given by intake at registration; the envelope's `complaint_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComplaintId(pub Uuid);

/// A work item's id, given by routing at assignment; stays the same across rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkId(pub Uuid);

/// An id on the wire that is not a UUID; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {value:?} is not a UUID")]
pub struct BadId {
    pub field: &'static str,
    pub value: String,
}

macro_rules! uuid_id {
    ($t:ident, $field:literal) => {
        impl $t {
            /// Parses the id as it travels in messages, naming the field when it is not one.
            pub fn parse(raw: &str) -> Result<Self, BadId> {
                raw.trim().parse().map($t).map_err(|_| BadId {
                    field: $field,
                    value: raw.chars().take(64).collect(),
                })
            }

            pub fn new_v7() -> Self {
                $t(Uuid::now_v7())
            }

            pub fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $t {
            type Err = BadId;
            fn from_str(s: &str) -> Result<Self, BadId> {
                $t::parse(s)
            }
        }

        impl From<Uuid> for $t {
            fn from(u: Uuid) -> Self {
                $t(u)
            }
        }
    };
}

uuid_id!(ComplaintId, "complaint_id");
uuid_id!(WorkId, "work_id");

/// An amount in whole minor units (fen for CNY) of an ISO 4217 currency; floating point never
/// touches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    pub minor: i64,
    pub currency: String,
}

impl Money {
    pub fn new(minor: i64, currency: impl Into<String>) -> Self {
        Self {
            minor,
            currency: currency.into(),
        }
    }
}

/// Minor units as a decimal with two places: 80000 → "800.00", -5 → "-0.05".
pub fn format_minor(minor: i64) -> String {
    format_with(minor, 2)
}

fn format_with(minor: i64, digits: u32) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if digits == 0 {
        return format!("{sign}{abs}");
    }
    let scale = 10u64.pow(digits);
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = digits as usize
    )
}

/// Digits after the decimal point of an ISO 4217 currency (2 unless listed).
pub fn minor_digits(currency: &str) -> u32 {
    match currency.to_ascii_uppercase().as_str() {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// "800.00 CNY", "1500 JPY": the one way an amount is written in history, reasons and views.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            format_with(self.minor, minor_digits(&self.currency)),
            self.currency
        )
    }
}

impl crate::v1::Severity {
    /// The grade as playbooks and tables spell it ("general", "major"); empty when
    /// unspecified.
    pub fn key(self) -> &'static str {
        match self {
            crate::v1::Severity::General => "general",
            crate::v1::Severity::Major => "major",
            crate::v1::Severity::Unspecified => "",
        }
    }

    /// [`Self::key`] of a value as it travels (an unknown number is unspecified).
    pub fn key_of(raw: i32) -> &'static str {
        Self::try_from(raw).unwrap_or_default().key()
    }
}

impl crate::v1::Urgency {
    /// The urgency as playbooks and tables spell it ("normal", "urgent", "emergency"); empty
    /// when unspecified.
    pub fn key(self) -> &'static str {
        match self {
            crate::v1::Urgency::Normal => "normal",
            crate::v1::Urgency::Urgent => "urgent",
            crate::v1::Urgency::Emergency => "emergency",
            crate::v1::Urgency::Unspecified => "",
        }
    }

    /// [`Self::key`] of a value as it travels (an unknown number is unspecified).
    pub fn key_of(raw: i32) -> &'static str {
        Self::try_from(raw).unwrap_or_default().key()
    }
}

impl crate::v1::ProposalKind {
    /// The kind as playbooks and the command line spell it; "" when unspecified.
    pub fn key(self) -> &'static str {
        use crate::v1::ProposalKind as K;
        match self {
            K::Unspecified => "",
            K::Compensation => "compensation",
            K::Refund => "refund",
            K::Rectification => "rectification",
            K::Preventive => "preventive",
            K::Apology => "apology",
        }
    }

    /// The kind a key names.
    pub fn key_of(key: &str) -> Option<Self> {
        use crate::v1::ProposalKind as K;
        [
            K::Compensation,
            K::Refund,
            K::Rectification,
            K::Preventive,
            K::Apology,
        ]
        .into_iter()
        .find(|k| k.key() == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_has_one_format() {
        assert_eq!(Money::new(80_000, "CNY").to_string(), "800.00 CNY");
        assert_eq!(Money::new(5, "CNY").to_string(), "0.05 CNY");
        assert_eq!(Money::new(-150, "USD").to_string(), "-1.50 USD");
        assert_eq!(format_minor(i64::MIN), "-92233720368547758.08");
        assert_eq!(Money::new(1500, "JPY").to_string(), "1500 JPY");
        assert_eq!(Money::new(1500, "KWD").to_string(), "1.500 KWD");
    }

    #[test]
    fn ids_name_their_field() {
        let id = WorkId::new_v7();
        assert_eq!(WorkId::parse(&id.to_string()), Ok(id));
        let e = ComplaintId::parse("work-1").unwrap_err();
        assert_eq!(e.field, "complaint_id");
        assert_eq!(e.to_string(), "complaint_id \"work-1\" is not a UUID");
    }
}
