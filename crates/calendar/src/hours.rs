//! Working-hours specifications such as `09:00-12:00,13:30-18:00`.

use crate::CalendarError;

/// Upper bound on intervals per day. A fixed bound lets the hot path keep a
/// day's intervals on the stack instead of allocating per computation.
pub const MAX_INTERVALS_PER_DAY: usize = 8;

const DAY_SECS: u32 = 86_400;

/// One working interval within a local day, in seconds after local midnight.
///
/// `end` may be 86 400 (written `24:00`), meaning the following midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkInterval {
    pub start: u32,
    pub end: u32,
}

impl WorkInterval {
    pub fn len_secs(self) -> u32 {
        self.end - self.start
    }
}

impl std::fmt::Display for WorkInterval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", clock(self.start), clock(self.end))
    }
}

fn clock(secs: u32) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if s == 0 {
        format!("{h:02}:{m:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// Parses a comma-separated list of `HH:MM-HH:MM` intervals (seconds are
/// optional, `24:00` is allowed as an end). Intervals must be ascending and
/// must not overlap; touching intervals are kept apart so the spec reads back
/// as written.
pub fn parse_hours(spec: &str) -> Result<Vec<WorkInterval>, CalendarError> {
    let bad = |reason: String| CalendarError::InvalidHours {
        input: spec.to_string(),
        reason,
    };
    let mut out = Vec::new();
    for part in spec.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(bad("empty interval; expected e.g. 09:00-18:00".into()));
        }
        let (a, b) = part
            .split_once('-')
            .ok_or_else(|| bad(format!("`{part}` is not of the form HH:MM-HH:MM")))?;
        let start = parse_clock(a.trim()).map_err(|r| bad(format!("`{}`: {r}", a.trim())))?;
        let end = parse_clock(b.trim()).map_err(|r| bad(format!("`{}`: {r}", b.trim())))?;
        if start >= DAY_SECS {
            return Err(bad(format!("`{part}` starts at or after 24:00")));
        }
        if end <= start {
            return Err(bad(format!("`{part}` ends before it starts")));
        }
        out.push(WorkInterval { start, end });
    }
    validate_intervals(&out).map_err(bad)?;
    Ok(out)
}

/// Checks ordering, overlap and the per-day bound of a day's intervals.
pub fn validate_intervals(ivs: &[WorkInterval]) -> Result<(), String> {
    if ivs.len() > MAX_INTERVALS_PER_DAY {
        return Err(format!(
            "{} intervals in one day; at most {MAX_INTERVALS_PER_DAY} are supported",
            ivs.len()
        ));
    }
    for w in ivs.windows(2) {
        if w[1].start < w[0].end {
            return Err(format!(
                "intervals {} and {} overlap or are out of order",
                w[0], w[1]
            ));
        }
    }
    Ok(())
}

fn parse_clock(s: &str) -> Result<u32, String> {
    let mut it = s.split(':');
    let mut field = |what: &str, max: u32| -> Result<Option<u32>, String> {
        match it.next() {
            None => Ok(None),
            Some(f) if f.len() == 2 && f.bytes().all(|b| b.is_ascii_digit()) => {
                let v: u32 = f.parse().map_err(|_| format!("bad {what}"))?;
                if v > max {
                    Err(format!("{what} {v} is out of range"))
                } else {
                    Ok(Some(v))
                }
            }
            Some(_) => Err(format!("{what} must be two digits")),
        }
    };
    let h = field("hour", 24)?.ok_or("missing hour")?;
    let m = field("minute", 59)?.ok_or("missing minute; expected HH:MM")?;
    let sec = field("second", 59)?.unwrap_or(0);
    if it.next().is_some() {
        return Err("too many `:` fields".into());
    }
    let total = h * 3600 + m * 60 + sec;
    if total > DAY_SECS {
        return Err("time is after 24:00".into());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lunch_break() {
        let v = parse_hours("09:00-12:00, 13:30-18:00").unwrap();
        assert_eq!(
            v,
            vec![
                WorkInterval {
                    start: 9 * 3600,
                    end: 12 * 3600
                },
                WorkInterval {
                    start: 13 * 3600 + 1800,
                    end: 18 * 3600
                }
            ]
        );
        assert_eq!(v[1].to_string(), "13:30-18:00");
    }

    #[test]
    fn allows_midnight_end_and_seconds() {
        let v = parse_hours("22:00:30-24:00").unwrap();
        assert_eq!(v[0].start, 22 * 3600 + 30);
        assert_eq!(v[0].end, 86_400);
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "",
            "9-18",
            "09:00",
            "18:00-09:00",
            "09:00-12:00,11:00-13:00",
            "13:00-14:00,09:00-10:00",
            "24:00-24:00",
            "09:60-10:00",
            "09:00-24:01",
            "09:00:00:00-10:00",
        ] {
            let err = parse_hours(bad).unwrap_err();
            assert!(
                matches!(err, CalendarError::InvalidHours { .. }),
                "{bad}: {err}"
            );
        }
    }
}
