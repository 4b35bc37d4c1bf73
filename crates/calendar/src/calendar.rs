//! A business calendar and the deadline arithmetic over it.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp, Zoned};
use serde::Deserialize;

use crate::days::{self, SECS_PER_DAY};
use crate::hours::{MAX_INTERVALS_PER_DAY, WorkInterval, parse_hours, validate_intervals};
use crate::{CalendarError, DeadlineSpan};

/// Earliest and latest supported local days. jiff stops at years -9999 and
/// 9999; keeping a margin means a zone conversion of a neighbouring day can
/// never fall off its range.
const MIN_DAY: i32 = -719_162; // 0001-01-01
const MAX_DAY: i32 = 2_932_531; // 9998-12-31

/// The precomputed table covers this many years from its start. Its prefix
/// sums are `u32`: 110 years of 25-hour days stays below `u32::MAX`.
const TABLE_YEARS: i32 = 110;
const TABLE_DEFAULT_START_YEAR: i32 = 2000;

/// Marks a table day whose local day is within reach of an offset change,
/// which must go through the time zone rules instead of the fixed offset.
const NEAR_TRANSITION: i32 = i32::MIN;

/// A named public holiday, an inclusive range of local dates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holiday {
    pub name: String,
    pub from: Date,
    pub to: Date,
}

/// Where a calendar year's data came from, as stated in the calendar file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YearSource {
    pub year: i16,
    pub source: String,
}

/// What a calendar says about one local date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayInfo<'a> {
    pub date: Date,
    /// Whether the date has working hours.
    pub working: bool,
    /// The holiday the date belongs to, if any.
    pub holiday: Option<&'a str>,
    /// A make-up working day: a day that is off by the weekly rule but
    /// declared a working day (调休).
    pub makeup: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exception {
    Holiday(u16),
    Makeup,
}

/// A business calendar: a time zone, weekly working hours, public holidays
/// and make-up working days.
///
/// # Semantics
///
/// * All business arithmetic works in whole seconds: an instant with a
///   fractional second is treated as the start of that second.
/// * Working intervals are local clock times, turned into real instants with
///   the zone's rules for each date, so a 09:00-18:00 day lasts 9 hours of
///   real time even across a DST change. A local time that does not exist (in
///   a spring-forward gap) is moved forward by the length of the gap; a local
///   time that occurs twice (in a fall-back fold) means the earlier of the
///   two instants. This is the "compatible" disambiguation of RFC 5545 and
///   Temporal. Should an interval end up ending before it starts, or before
///   the previous interval of the day ends, it is clamped to zero length so a
///   day's intervals always stay ordered and disjoint.
/// * A date is a working day when its weekday (or, for a make-up day, the
///   make-up hours) has at least one working interval and it is not inside a
///   public holiday.
/// * Dates outside the years a calendar file covers follow the weekly rule
///   alone.
#[derive(Clone, Debug)]
pub struct Calendar {
    name: String,
    description: String,
    zone_name: String,
    zone: TimeZone,
    week: [Vec<WorkInterval>; 7],
    makeup_hours: Vec<WorkInterval>,
    holidays: Vec<Holiday>,
    makeup: Vec<Date>,
    sources: Vec<YearSource>,
    /// Holidays and make-up days expanded to single days, sorted by day.
    exceptions: Vec<(i32, Exception)>,
    table: OnceLock<DayTable>,
}

/// Per-day prefix sums over a window of years, so that counting working days
/// or working seconds across any span is two lookups and a binary search.
#[derive(Clone, Debug)]
struct DayTable {
    base: i32,
    /// `prefix_secs[i]`: working seconds in days `base .. base + i`.
    prefix_secs: Vec<u32>,
    /// `prefix_days[i]`: working days in days `base .. base + i`. The
    /// window has fewer than 65 536 days, so `u16` suffices.
    prefix_days: Vec<u16>,
    /// UTC offset in seconds valid for the whole local day and the day on
    /// either side, or `NEAR_TRANSITION`. Empty when the zone has no offset
    /// change in the window (UTC, Asia/Shanghai since 1991), in which case
    /// `fixed_offset` applies to every day.
    offsets: Vec<i32>,
    fixed_offset: i32,
}

impl DayTable {
    fn end(&self) -> i32 {
        self.base + self.prefix_secs.len() as i32 - 1
    }

    fn contains(&self, day: i32) -> bool {
        day >= self.base && day < self.end()
    }

    fn uniform_offset(&self, day: i32) -> Option<i64> {
        if !self.contains(day) {
            return None;
        }
        self.offset_at(day)
    }

    /// Like `uniform_offset` without the window check, for use while the
    /// prefix sums are still being filled in.
    fn offset_at(&self, day: i32) -> Option<i64> {
        let off = match self.offsets.get(usize::try_from(day - self.base).ok()?) {
            Some(&off) => off,
            None => self.fixed_offset,
        };
        (off != NEAR_TRANSITION).then_some(i64::from(off))
    }

    fn heap_bytes(&self) -> usize {
        self.prefix_secs.capacity() * size_of::<u32>()
            + self.prefix_days.capacity() * size_of::<u16>()
            + self.offsets.capacity() * size_of::<i32>()
    }
}

/// A day's working intervals as instants (seconds since the epoch), kept on
/// the stack.
#[derive(Clone, Copy)]
struct Spans {
    len: usize,
    v: [(i64, i64); MAX_INTERVALS_PER_DAY],
}

impl Spans {
    fn as_slice(&self) -> &[(i64, i64)] {
        &self.v[..self.len]
    }

    fn total(&self) -> i64 {
        self.as_slice().iter().map(|&(s, e)| e - s).sum()
    }

    /// Working seconds of this day that lie before instant `t`.
    fn worked_before(&self, t: i64) -> i64 {
        self.as_slice()
            .iter()
            .map(|&(s, e)| t.clamp(s, e) - s)
            .sum()
    }

    /// The instant at which `r` working seconds of this day have passed,
    /// for `0 < r <= total()`.
    fn instant_after(&self, mut r: i64) -> i64 {
        for &(s, e) in self.as_slice() {
            if r <= e - s {
                return s + r;
            }
            r -= e - s;
        }
        // Unreachable for valid `r`; the end of the day is the safe answer.
        self.as_slice().last().map_or(0, |&(_, e)| e)
    }
}

// ----- file format -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarSpec {
    name: String,
    #[serde(default)]
    description: String,
    zone: String,
    #[serde(default)]
    workdays: Vec<String>,
    #[serde(default)]
    hours: Vec<String>,
    #[serde(default)]
    weekday_hours: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    makeup_hours: Option<Vec<String>>,
    #[serde(default, rename = "year")]
    years: Vec<YearSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearSpec {
    year: i16,
    source: String,
    #[serde(default)]
    holidays: Vec<HolidaySpec>,
    #[serde(default)]
    makeup: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidaySpec {
    name: String,
    from: String,
    to: Option<String>,
}

const WEEKDAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn weekday_from_name(s: &str) -> Option<usize> {
    let s = s.to_ascii_lowercase();
    WEEKDAY_NAMES
        .iter()
        .position(|w| s == *w || (s.len() > 3 && s.starts_with(w)))
}

pub(crate) fn parse_date(s: &str) -> Result<Date, CalendarError> {
    s.trim()
        .parse::<Date>()
        .map_err(|e| CalendarError::InvalidDate {
            input: s.to_string(),
            reason: e.to_string(),
        })
}

pub(crate) fn lookup_zone(name: &str) -> Result<TimeZone, CalendarError> {
    // The system database is preferred because the OS keeps it current; the
    // bundled copy is the fallback for hosts without /usr/share/zoneinfo or
    // with an older copy that lacks the zone.
    match TimeZone::get(name) {
        Ok(tz) => Ok(tz),
        Err(e) => jiff::tz::TimeZoneDatabase::bundled()
            .get(name)
            .map_err(|_| CalendarError::UnknownZone {
                name: name.to_string(),
                reason: e.to_string(),
            }),
    }
}

impl Calendar {
    /// Parses and validates a calendar file's contents.
    pub fn from_toml(text: &str) -> Result<Self, CalendarError> {
        let spec: CalendarSpec =
            toml::from_str(text).map_err(|e| CalendarError::InvalidCalendar {
                name: "<unnamed>".into(),
                reason: e.to_string(),
            })?;
        Self::from_spec(spec)
    }

    fn from_spec(spec: CalendarSpec) -> Result<Self, CalendarError> {
        let name = spec.name.clone();
        let invalid = |reason: String| CalendarError::InvalidCalendar {
            name: name.clone(),
            reason,
        };
        let hours_of = |list: &[String]| -> Result<Vec<WorkInterval>, CalendarError> {
            let mut out = Vec::new();
            for item in list {
                out.extend(parse_hours(item)?);
            }
            validate_intervals(&out).map_err(|r| invalid(r.clone()))?;
            Ok(out)
        };
        let zone = lookup_zone(&spec.zone)?;
        let hours = hours_of(&spec.hours)?;
        let mut week: [Vec<WorkInterval>; 7] = Default::default();
        for wd in &spec.workdays {
            let i =
                weekday_from_name(wd).ok_or_else(|| invalid(format!("unknown weekday `{wd}`")))?;
            week[i] = hours.clone();
        }
        for (wd, list) in &spec.weekday_hours {
            let i =
                weekday_from_name(wd).ok_or_else(|| invalid(format!("unknown weekday `{wd}`")))?;
            week[i] = hours_of(list)?;
        }
        if week.iter().all(Vec::is_empty) {
            return Err(invalid(
                "no weekday has working hours, so no deadline could ever be reached".into(),
            ));
        }
        let makeup_hours = match &spec.makeup_hours {
            Some(list) => hours_of(list)?,
            None => hours.clone(),
        };

        let mut holidays = Vec::new();
        let mut makeup = Vec::new();
        let mut sources = Vec::new();
        for y in spec.years {
            if sources.iter().any(|s: &YearSource| s.year == y.year) {
                return Err(invalid(format!("year {} is listed twice", y.year)));
            }
            if y.source.trim().is_empty() {
                return Err(invalid(format!("year {} names no source", y.year)));
            }
            for h in y.holidays {
                let from = parse_date(&h.from)?;
                let to = match &h.to {
                    Some(t) => parse_date(t)?,
                    None => from,
                };
                if to < from {
                    return Err(invalid(format!(
                        "holiday `{}` ends before it starts",
                        h.name
                    )));
                }
                holidays.push(Holiday {
                    name: h.name,
                    from,
                    to,
                });
            }
            for m in &y.makeup {
                makeup.push(parse_date(m)?);
            }
            sources.push(YearSource {
                year: y.year,
                source: y.source,
            });
        }
        // Order is checked, not imposed: an out-of-order entry in a file an
        // operator edited by hand is more likely a typo than intent.
        for w in holidays.windows(2) {
            if w[1].from <= w[0].to {
                return Err(invalid(format!(
                    "holidays `{}` ({}..{}) and `{}` ({}..{}) overlap or are out of order",
                    w[0].name, w[0].from, w[0].to, w[1].name, w[1].from, w[1].to
                )));
            }
        }
        for w in makeup.windows(2) {
            if w[1] <= w[0] {
                return Err(invalid(format!(
                    "make-up days {} and {} are duplicated or out of order",
                    w[0], w[1]
                )));
            }
        }
        let mut exceptions = Vec::new();
        for (i, h) in holidays.iter().enumerate() {
            let idx = u16::try_from(i).map_err(|_| invalid("too many holidays".into()))?;
            for d in days::of_date(h.from)..=days::of_date(h.to) {
                exceptions.push((d, Exception::Holiday(idx)));
            }
        }
        for &m in &makeup {
            let d = days::of_date(m);
            if let Some(h) = holidays.iter().find(|h| h.from <= m && m <= h.to) {
                return Err(invalid(format!(
                    "{m} is both a make-up working day and part of holiday `{}`",
                    h.name
                )));
            }
            if !week[days::weekday_index(d)].is_empty() {
                return Err(invalid(format!(
                    "make-up day {m} is a {:?} and already a working day",
                    m.weekday()
                )));
            }
            exceptions.push((d, Exception::Makeup));
        }
        if !makeup.is_empty() && makeup_hours.is_empty() {
            return Err(invalid(
                "make-up days are listed but make-up hours are empty".into(),
            ));
        }
        exceptions.sort_by_key(|&(d, _)| d);

        Ok(Self {
            name: spec.name,
            description: spec.description,
            zone_name: spec.zone,
            zone,
            week,
            makeup_hours,
            holidays,
            makeup,
            sources,
            exceptions,
            table: OnceLock::new(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    pub fn zone_name(&self) -> &str {
        &self.zone_name
    }

    pub fn holidays(&self) -> &[Holiday] {
        &self.holidays
    }

    pub fn makeup_days(&self) -> &[Date] {
        &self.makeup
    }

    pub fn sources(&self) -> &[YearSource] {
        &self.sources
    }

    /// Working intervals by weekday, Monday first.
    pub fn weekly_hours(&self) -> &[Vec<WorkInterval>; 7] {
        &self.week
    }

    /// The same calendar with every working day's hours replaced by `spec`
    /// (e.g. `09:00-12:00,13:30-18:00`). Which days are working days is kept.
    pub fn with_hours(&self, spec: &str) -> Result<Self, CalendarError> {
        let hours = parse_hours(spec)?;
        let mut cal = self.clone();
        for day in cal.week.iter_mut().filter(|d| !d.is_empty()) {
            *day = hours.clone();
        }
        cal.makeup_hours = hours;
        cal.table = OnceLock::new();
        Ok(cal)
    }

    /// The same calendar with its working hours read in another IANA zone.
    pub fn with_zone(&self, zone: &str) -> Result<Self, CalendarError> {
        let mut cal = self.clone();
        cal.zone = lookup_zone(zone)?;
        cal.zone_name = zone.to_string();
        cal.table = OnceLock::new();
        Ok(cal)
    }

    /// Builds the lookup tables now rather than on first use, e.g. before
    /// timing or measuring memory.
    pub fn prepare(&self) {
        self.table();
    }

    /// Approximate heap memory held by this calendar, including its lookup
    /// tables if they have been built.
    pub fn approx_heap_bytes(&self) -> usize {
        let strings = self.name.capacity()
            + self.description.capacity()
            + self.zone_name.capacity()
            + self
                .holidays
                .iter()
                .map(|h| h.name.capacity())
                .sum::<usize>()
            + self
                .sources
                .iter()
                .map(|s| s.source.capacity())
                .sum::<usize>();
        let vecs = self.week.iter().map(|w| w.capacity()).sum::<usize>()
            * size_of::<WorkInterval>()
            + self.makeup_hours.capacity() * size_of::<WorkInterval>()
            + self.holidays.capacity() * size_of::<Holiday>()
            + self.makeup.capacity() * size_of::<Date>()
            + self.sources.capacity() * size_of::<YearSource>()
            + self.exceptions.capacity() * size_of::<(i32, Exception)>();
        strings + vecs + self.table.get().map_or(0, DayTable::heap_bytes)
    }

    // ----- per-day rules -----

    fn exception(&self, day: i32) -> Option<Exception> {
        self.exceptions
            .binary_search_by_key(&day, |&(d, _)| d)
            .ok()
            .map(|i| self.exceptions[i].1)
    }

    fn intervals(&self, day: i32) -> &[WorkInterval] {
        match self.exception(day) {
            Some(Exception::Holiday(_)) => &[],
            Some(Exception::Makeup) => &self.makeup_hours,
            None => &self.week[days::weekday_index(day)],
        }
    }

    /// What the calendar says about a local date.
    pub fn day(&self, date: Date) -> DayInfo<'_> {
        let d = days::of_date(date);
        let exc = self.exception(d);
        DayInfo {
            date,
            working: !self.intervals(d).is_empty(),
            holiday: match exc {
                Some(Exception::Holiday(i)) => Some(self.holidays[usize::from(i)].name.as_str()),
                _ => None,
            },
            makeup: exc == Some(Exception::Makeup),
        }
    }

    pub fn is_working_day(&self, date: Date) -> bool {
        !self.intervals(days::of_date(date)).is_empty()
    }

    /// The working intervals of a local date as real instants.
    pub fn working_intervals(&self, date: Date) -> Vec<(Timestamp, Timestamp)> {
        let d = days::of_date(date);
        if !(MIN_DAY..=MAX_DAY).contains(&d) {
            return Vec::new();
        }
        self.spans(d)
            .as_slice()
            .iter()
            .filter_map(|&(s, e)| {
                Some((
                    Timestamp::from_second(s).ok()?,
                    Timestamp::from_second(e).ok()?,
                ))
            })
            .collect()
    }

    fn table(&self) -> &DayTable {
        self.table.get_or_init(|| self.build_table())
    }

    fn build_table(&self) -> DayTable {
        let first_year = self
            .holidays
            .first()
            .map(|h| i32::from(h.from.year()))
            .into_iter()
            .chain(self.makeup.first().map(|m| i32::from(m.year())))
            .fold(TABLE_DEFAULT_START_YEAR, i32::min)
            .max(1900);
        let base = days::from_civil(first_year, 1, 1);
        let end = days::from_civil(first_year + TABLE_YEARS, 1, 1);
        let n = (end - base) as usize;

        // Offset changes in and around the window; a day is only given a
        // fixed offset if none lies within 26 hours of its UTC day, which
        // covers the local day for any real offset.
        let reach = 26 * 3600;
        let lo = Timestamp::from_second(i64::from(base) * SECS_PER_DAY - 2 * reach)
            .unwrap_or(Timestamp::MIN);
        let hi = i64::from(end) * SECS_PER_DAY + 2 * reach;
        let transitions: Vec<i64> = self
            .zone
            .following(lo)
            .map(|t| t.timestamp().as_second())
            .take_while(|&t| t <= hi)
            .collect();

        let mut offsets = Vec::with_capacity(n);
        let mut next_tr = 0;
        for d in base..end {
            let from = i64::from(d) * SECS_PER_DAY - reach;
            let to = i64::from(d + 1) * SECS_PER_DAY + reach;
            while next_tr < transitions.len() && transitions[next_tr] < from {
                next_tr += 1;
            }
            let near = next_tr < transitions.len() && transitions[next_tr] < to;
            offsets.push(if near {
                NEAR_TRANSITION
            } else {
                let ts = Timestamp::from_second(i64::from(d) * SECS_PER_DAY)
                    .unwrap_or(Timestamp::UNIX_EPOCH);
                self.zone.to_offset(ts).seconds()
            });
        }
        let fixed_offset = offsets.first().copied().unwrap_or(0);
        if transitions.is_empty() {
            offsets = Vec::new();
        }
        let mut table = DayTable {
            base,
            prefix_secs: Vec::with_capacity(n + 1),
            prefix_days: Vec::with_capacity(n + 1),
            offsets,
            fixed_offset,
        };
        let (mut secs, mut wdays) = (0u32, 0u16);
        table.prefix_secs.push(0);
        table.prefix_days.push(0);
        for d in base..end {
            let spans = self.spans_with_offset(table.offset_at(d), d);
            secs += spans.total() as u32;
            wdays += u16::from(!self.intervals(d).is_empty());
            table.prefix_secs.push(secs);
            table.prefix_days.push(wdays);
        }
        table
    }

    fn spans(&self, day: i32) -> Spans {
        self.spans_with(self.table(), day)
    }

    fn spans_with(&self, table: &DayTable, day: i32) -> Spans {
        self.spans_with_offset(table.uniform_offset(day), day)
    }

    fn spans_with_offset(&self, offset: Option<i64>, day: i32) -> Spans {
        let ivs = self.intervals(day);
        let mut out = Spans {
            len: ivs.len(),
            v: [(0, 0); MAX_INTERVALS_PER_DAY],
        };
        let midnight = i64::from(day) * SECS_PER_DAY;
        if let Some(off) = offset {
            for (slot, iv) in out.v.iter_mut().zip(ivs) {
                *slot = (
                    midnight + i64::from(iv.start) - off,
                    midnight + i64::from(iv.end) - off,
                );
            }
            return out;
        }
        let mut floor = i64::MIN;
        for (slot, iv) in out.v.iter_mut().zip(ivs) {
            let s = self.local_to_instant(day, iv.start).max(floor);
            let e = self.local_to_instant(day, iv.end).max(s);
            *slot = (s, e);
            floor = e;
        }
        out
    }

    /// The instant of a local clock time, resolving gaps and folds the
    /// "compatible" way (see the type's documentation).
    fn local_to_instant(&self, day: i32, sec_of_day: u32) -> i64 {
        let (day, sec) = if sec_of_day >= 86_400 {
            (day + 1, sec_of_day - 86_400)
        } else {
            (day, sec_of_day)
        };
        let time = Time::new(
            (sec / 3600) as i8,
            (sec / 60 % 60) as i8,
            (sec % 60) as i8,
            0,
        )
        .unwrap_or(Time::MIN);
        let dt = days::to_date(day).to_datetime(time);
        match self.zone.to_ambiguous_timestamp(dt).compatible() {
            Ok(ts) => ts.as_second(),
            // Only reachable at the very edge of jiff's range, which the
            // public entry points exclude.
            Err(_) => i64::from(day) * SECS_PER_DAY + i64::from(sec),
        }
    }

    fn day_secs(&self, day: i32) -> i64 {
        let t = self.table();
        if t.contains(day) {
            let i = (day - t.base) as usize;
            i64::from(t.prefix_secs[i + 1] - t.prefix_secs[i])
        } else {
            self.spans_with(t, day).total()
        }
    }

    fn day_is_working(&self, day: i32) -> i64 {
        i64::from(!self.intervals(day).is_empty())
    }

    /// Local day number containing instant `t` (seconds).
    fn local_day(&self, t: i64) -> i64 {
        let utc_day = t.div_euclid(SECS_PER_DAY);
        let off = match i32::try_from(utc_day)
            .ok()
            .and_then(|d| self.table().uniform_offset(d))
        {
            Some(off) => off,
            None => {
                let ts = Timestamp::from_second(t).unwrap_or(Timestamp::UNIX_EPOCH);
                i64::from(self.zone.to_offset(ts).seconds())
            }
        };
        (t + off).div_euclid(SECS_PER_DAY)
    }

    /// Sum of a per-day measure over days `a .. b` (`a <= b`).
    fn sum_days<P: Copy + Into<i64>>(
        &self,
        a: i32,
        b: i32,
        prefix: fn(&DayTable) -> &[P],
        per_day: fn(&Self, i32) -> i64,
    ) -> i64 {
        let t = self.table();
        let mut sum = 0;
        for d in a..b.min(t.base) {
            sum += per_day(self, d);
        }
        let (lo, hi) = (a.max(t.base), b.min(t.end()));
        if lo < hi {
            let p = prefix(t);
            sum += p[(hi - t.base) as usize].into() - p[(lo - t.base) as usize].into();
        }
        for d in a.max(t.end())..b {
            sum += per_day(self, d);
        }
        sum
    }

    /// The first day `e >= d` by which a per-day measure summed from `d`
    /// reaches `need` (> 0), and how much of `need` is left for day `e`.
    fn advance<P: Copy + Into<i64>>(
        &self,
        mut d: i32,
        mut need: i64,
        prefix: fn(&DayTable) -> &[P],
        per_day: fn(&Self, i32) -> i64,
    ) -> Result<(i32, i64), CalendarError> {
        let t = self.table();
        loop {
            if t.contains(d) {
                let p = prefix(t);
                let i = (d - t.base) as usize;
                let avail = p[p.len() - 1].into() - p[i].into();
                if need <= avail {
                    let target = p[i].into() + need;
                    let k = i + 1 + p[i + 1..].partition_point(|&x| x.into() < target);
                    let e = k - 1;
                    return Ok((t.base + e as i32, target - p[e].into()));
                }
                need -= avail;
                d = t.end();
                continue;
            }
            if d > MAX_DAY {
                return Err(CalendarError::OutOfRange(
                    "the deadline would fall after the year 9998".into(),
                ));
            }
            let v = per_day(self, d);
            if need <= v {
                return Ok((d, need));
            }
            need -= v;
            d += 1;
        }
    }

    fn check_instant(&self, t: Timestamp) -> Result<(i64, i32), CalendarError> {
        let mut s = t.as_second();
        if t.subsec_nanosecond() < 0 {
            s -= 1;
        }
        let d = self.local_day(s);
        if d < i64::from(MIN_DAY) || d > i64::from(MAX_DAY) {
            return Err(CalendarError::OutOfRange(format!(
                "{t} is outside the years 0001 to 9998"
            )));
        }
        Ok((s, d as i32))
    }

    fn to_timestamp(s: i64) -> Result<Timestamp, CalendarError> {
        Timestamp::from_second(s).map_err(|e| CalendarError::OutOfRange(e.to_string()))
    }

    // ----- arithmetic -----

    /// The first instant at or after `at` that lies inside working hours.
    ///
    /// An instant exactly at the end of an interval is not inside it (the
    /// office has closed); an instant exactly at the start is.
    pub fn next_working_instant(
        &self,
        at: impl Into<Timestamp>,
    ) -> Result<Timestamp, CalendarError> {
        let at = at.into();
        let (t, d) = self.check_instant(at)?;
        if let Some(&(s, _)) = self
            .spans(d)
            .as_slice()
            .iter()
            .find(|&&(s, e)| t < e && s < e)
        {
            return if s <= t {
                Ok(at)
            } else {
                Self::to_timestamp(s)
            };
        }
        let (e, _) = self.advance(d + 1, 1, |t| &t.prefix_secs, Self::day_secs)?;
        let spans = self.spans(e);
        Self::to_timestamp(spans.instant_after(1) - 1)
    }

    /// Elapsed (wall) time: the same instant `amount` later, whatever the
    /// calendar says.
    pub fn add_calendar_time(
        &self,
        start: impl Into<Timestamp>,
        amount: SignedDuration,
    ) -> Result<Timestamp, CalendarError> {
        start
            .into()
            .checked_add(amount)
            .map_err(|e| CalendarError::OutOfRange(e.to_string()))
    }

    /// Calendar days in the calendar's zone: the same local clock time `n`
    /// days later. Across a DST change that is 23 or 25 hours per day; if the
    /// clock time does not exist on the target day it moves forward by the
    /// gap, and if it exists twice the earlier instant is used.
    pub fn add_calendar_days(
        &self,
        start: impl Into<Timestamp>,
        n: i32,
    ) -> Result<Zoned, CalendarError> {
        start
            .into()
            .to_zoned(self.zone.clone())
            .checked_add(
                Span::new()
                    .try_days(n)
                    .map_err(|e| CalendarError::OutOfRange(e.to_string()))?,
            )
            .map_err(|e| CalendarError::OutOfRange(e.to_string()))
    }

    /// Adds business time: the clock only runs inside working intervals.
    ///
    /// The result is the earliest instant at which `amount` of working time
    /// has passed since `start`, so a deadline that uses up a day's last
    /// working second lands on that day's close of business, not on the next
    /// opening. A zero amount returns `start` unchanged. Fractions of a second
    /// in `amount` round up so a deadline is never early.
    pub fn add_business_time(
        &self,
        start: impl Into<Timestamp>,
        amount: SignedDuration,
    ) -> Result<Timestamp, CalendarError> {
        let start = start.into();
        if amount.is_negative() {
            return Err(CalendarError::InvalidDuration {
                input: format!("{amount:?}"),
                reason: "business time must not be negative".into(),
            });
        }
        let secs = amount
            .as_secs()
            .saturating_add(i64::from(amount.subsec_nanos() > 0));
        if secs == 0 {
            return Ok(start);
        }
        let (t, d) = self.check_instant(start)?;
        let need = self
            .spans(d)
            .worked_before(t)
            .checked_add(secs)
            // No day has more than 25 working hours, so anything beyond this
            // cannot be reached before the supported range ends; refusing it
            // up front avoids walking millions of days to find that out.
            .filter(|&need| need <= (i64::from(MAX_DAY) - i64::from(d) + 1) * 25 * 3600)
            .ok_or_else(|| CalendarError::OutOfRange(format!("{amount:?} of business time")))?;
        let (e, r) = self.advance(d, need, |t| &t.prefix_secs, Self::day_secs)?;
        Self::to_timestamp(self.spans(e).instant_after(r))
    }

    /// Close of business on the `n`-th working day after the local date on
    /// which the clock started.
    ///
    /// Working days are counted strictly after the start date, whatever the
    /// time of day and whether or not the start date is itself a working
    /// day: a request received on Friday (or Saturday, or on Monday before
    /// opening) with "1 working day" is due at close of business on the next
    /// working day after that date. This is how "reply within N working days"
    /// is read in practice: the day of receipt never counts.
    ///
    /// `n = 0` means "by close of business today": the close of the working
    /// day on which the next working instant at or after `start` falls. When
    /// the clock starts outside working time (a weekend, or Friday after
    /// close), that is the same instant as `n = 1`.
    pub fn add_working_days(
        &self,
        start: impl Into<Timestamp>,
        n: u32,
    ) -> Result<Timestamp, CalendarError> {
        let start = start.into();
        let (_, d) = self.check_instant(start)?;
        if i64::from(n) > i64::from(MAX_DAY) - i64::from(d) {
            return Err(CalendarError::OutOfRange(format!(
                "{n} working days from {start}"
            )));
        }
        let day = if n == 0 {
            let next = self.next_working_instant(start)?;
            self.check_instant(next)?.1
        } else {
            self.advance(
                d + 1,
                i64::from(n),
                |t| &t.prefix_days,
                Self::day_is_working,
            )?
            .0
        };
        let close = self.spans(day).as_slice().last().map_or(0, |&(_, e)| e);
        Self::to_timestamp(close)
    }

    /// Business time between two instants, leaving out the `pauses`
    /// (intervals that may overlap each other or extend beyond `from..to`).
    /// Zero if `to` is not after `from`.
    pub fn business_time_between(
        &self,
        from: impl Into<Timestamp>,
        to: impl Into<Timestamp>,
        pauses: &[(Timestamp, Timestamp)],
    ) -> Result<SignedDuration, CalendarError> {
        let (a, da) = self.check_instant(from.into())?;
        let (b, db) = self.check_instant(to.into())?;
        if b <= a {
            return Ok(SignedDuration::ZERO);
        }
        let mut total = self.raw_between(a, da, b, db);
        let mut clipped = Vec::with_capacity(pauses.len());
        for &(ps, pe) in pauses {
            let (ps, dps) = self.check_instant(ps)?;
            let (pe, dpe) = self.check_instant(pe)?;
            let (ps, dps) = if ps < a { (a, da) } else { (ps, dps) };
            let (pe, dpe) = if pe > b { (b, db) } else { (pe, dpe) };
            if ps < pe {
                clipped.push(((ps, dps), (pe, dpe)));
            }
        }
        clipped.sort_unstable_by_key(|&((s, _), _)| s);
        let mut merged: Vec<((i64, i32), (i64, i32))> = Vec::with_capacity(clipped.len());
        for p in clipped {
            match merged.last_mut() {
                Some(last) if p.0.0 <= last.1.0 => {
                    if p.1.0 > last.1.0 {
                        last.1 = p.1;
                    }
                }
                _ => merged.push(p),
            }
        }
        for ((s, ds), (e, de)) in merged {
            total -= self.raw_between(s, ds, e, de);
        }
        Ok(SignedDuration::from_secs(total))
    }

    fn raw_between(&self, a: i64, da: i32, b: i64, db: i32) -> i64 {
        self.sum_days(da, db, |t| &t.prefix_secs, Self::day_secs) + self.spans(db).worked_before(b)
            - self.spans(da).worked_before(a)
    }

    /// The deadline for an SLA time limit, in the calendar's zone.
    pub fn deadline(
        &self,
        start: impl Into<Timestamp>,
        span: DeadlineSpan,
    ) -> Result<Zoned, CalendarError> {
        let start = start.into();
        let ts = match span {
            DeadlineSpan::Minutes(n) => {
                self.add_calendar_time(start, SignedDuration::from_secs(i64::from(n) * 60))?
            }
            DeadlineSpan::Hours(n) => {
                self.add_calendar_time(start, SignedDuration::from_secs(i64::from(n) * 3600))?
            }
            DeadlineSpan::Days(n) => {
                let n =
                    i32::try_from(n).map_err(|_| CalendarError::OutOfRange(format!("{n} days")))?;
                return self.add_calendar_days(start, n);
            }
            DeadlineSpan::BusinessMinutes(n) => {
                self.add_business_time(start, SignedDuration::from_secs(i64::from(n) * 60))?
            }
            DeadlineSpan::BusinessHours(n) => {
                self.add_business_time(start, SignedDuration::from_secs(i64::from(n) * 3600))?
            }
            DeadlineSpan::WorkingDays(n) => self.add_working_days(start, n)?,
        };
        Ok(ts.to_zoned(self.zone.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed-offset fast path must agree with the zone rules on every
    /// day, including the days next to DST changes and the window's edges.
    #[test]
    fn fast_spans_agree_with_zone_rules() {
        for zone in [
            "America/New_York",
            "Europe/Berlin",
            "Australia/Lord_Howe",
            "Asia/Shanghai",
            "UTC",
        ] {
            let cal = Calendar::from_toml(&format!(
                "name = \"t\"\nzone = \"{zone}\"\nworkdays = [\"mon\",\"tue\",\"wed\",\"thu\",\"fri\",\"sat\",\"sun\"]\nhours = [\"00:00-02:30\", \"03:00-12:00\", \"13:00-24:00\"]\n"
            ))
            .unwrap();
            let t = cal.table();
            for d in (t.base - 3)..(t.base + 20 * 366) {
                let slow = cal.spans_with_offset(None, d);
                assert_eq!(
                    cal.spans(d).as_slice(),
                    slow.as_slice(),
                    "{zone} {}",
                    days::to_date(d)
                );
                assert_eq!(cal.day_secs(d), slow.total(), "{zone} {}", days::to_date(d));
            }
            for d in (t.end() - 400)..(t.end() + 3) {
                let slow = cal.spans_with_offset(None, d);
                assert_eq!(
                    cal.spans(d).as_slice(),
                    slow.as_slice(),
                    "{zone} {}",
                    days::to_date(d)
                );
            }
        }
    }

    #[test]
    fn local_day_agrees_with_jiff() {
        let cal = Calendar::from_toml(
            "name = \"t\"\nzone = \"America/New_York\"\nworkdays = [\"mon\"]\nhours = [\"09:00-17:00\"]\n",
        )
        .unwrap();
        let mut t = 1_700_000_000i64;
        while t < 1_760_000_000 {
            let ts = Timestamp::from_second(t).unwrap();
            let want = days::of_date(ts.to_zoned(cal.zone.clone()).date());
            assert_eq!(cal.local_day(t), i64::from(want), "{ts}");
            t += 1799;
        }
    }
}
