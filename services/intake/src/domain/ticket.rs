//! Ticket numbers people can read out on the phone: `RD-261123-000427`, i.e. a prefix, the
//! day of receipt in the organisation's zone, a sequence number shared by all instances
//! (a Postgres sequence) and a final Luhn check digit that catches a mistyped digit or two
//! swapped neighbours.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ticket(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("a ticket looks like RD-261123-000427")]
    Shape,
    #[error("the ticket's check digit does not match: a digit is probably mistyped")]
    CheckDigit,
}

fn luhn_digit(digits: &str) -> u32 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

impl Ticket {
    pub fn issue(prefix: &str, yymmdd: &str, sequence: i64) -> Self {
        let seq = format!("{sequence:05}");
        let check = luhn_digit(&format!("{yymmdd}{seq}"));
        Ticket(format!("{prefix}-{yymmdd}-{seq}{check}"))
    }

    /// Accepts any case and surrounding spaces; checks the shape and the check digit.
    pub fn parse(raw: &str) -> Result<Self, TicketError> {
        let t = raw.trim().to_ascii_uppercase();
        let mut parts = t.split('-');
        let (Some(prefix), Some(day), Some(rest), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TicketError::Shape);
        };
        let ok = !prefix.is_empty()
            && prefix.len() <= 8
            && prefix.bytes().all(|b| b.is_ascii_uppercase())
            && day.len() == 6
            && day.bytes().all(|b| b.is_ascii_digit())
            && rest.len() >= 6
            && rest.bytes().all(|b| b.is_ascii_digit());
        if !ok {
            return Err(TicketError::Shape);
        }
        let (seq, check) = rest.split_at(rest.len() - 1);
        if luhn_digit(&format!("{day}{seq}")) != u32::from(check.as_bytes()[0] - b'0') {
            return Err(TicketError::CheckDigit);
        }
        Ok(Ticket(t))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn issues_readable_numbers() {
        let t = Ticket::issue("RD", "261123", 42);
        assert!(t.as_str().starts_with("RD-261123-00042"));
        assert_eq!(t.as_str().len(), "RD-261123-000427".len());
        assert_eq!(Ticket::parse(&t.as_str().to_lowercase()).unwrap(), t);
        // Sequences past 99,999 simply grow longer.
        assert!(Ticket::parse(Ticket::issue("RD", "261123", 1_234_567).as_str()).is_ok());
    }

    #[test]
    fn shapes_are_checked() {
        for bad in [
            "",
            "RD",
            "RD-2611-000427",
            "RD-261123-",
            "R1-261123-000427",
            "RD-261123-0004x7",
            "RD-261123-000427-1",
        ] {
            assert_eq!(Ticket::parse(bad), Err(TicketError::Shape), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn one_wrong_digit_is_always_caught(seq in 0i64..10_000_000, pos in 0usize..11, delta in 1u8..10) {
            let t = Ticket::issue("RD", "261123", seq);
            let mut bytes = t.as_str().as_bytes().to_vec();
            let digit_positions: Vec<usize> = bytes.iter().enumerate().filter(|(_, b)| b.is_ascii_digit()).map(|(i, _)| i).collect();
            let i = digit_positions[pos % digit_positions.len()];
            bytes[i] = b'0' + (bytes[i] - b'0' + delta) % 10;
            let typo = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(Ticket::parse(&typo), Err(TicketError::CheckDigit));
        }
    }
}
