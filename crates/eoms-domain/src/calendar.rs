//! The business calendar: which days are worked (weekdays, less holidays, plus make-up working
//! days such as China's 调休 weekends) and the working hours of a working day. A process whose
//! limits count working time (`clock = "working"`) measures its deadlines on it: "8h" is eight
//! working hours, "2d" two working days' worth of working hours.
//!
//! The calendar is part of the org directory (`[calendar]` in its TOML), because it is the
//! organisation's and changes every year with the holiday schedule, while process definitions are
//! versioned per ticket. A deadline, once computed, is stored as an instant in the ticket's events:
//! editing the calendar never moves a deadline already given.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveTime, TimeDelta, Utc, Weekday};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The calendar as written in the directory (strings, so the admin's TOML round-trips).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    /// UTC offset of the working hours, e.g. `+08:00`.
    #[serde(default = "default_tz")]
    pub timezone: String,
    /// Working weekdays: `mon` … `sun`.
    #[serde(default = "default_weekdays")]
    pub weekdays: Vec<String>,
    /// Working hours of a working day, `HH:MM-HH:MM`, in order and not overlapping.
    #[serde(default = "default_hours")]
    pub hours: Vec<String>,
    /// Days not worked: `YYYY-MM-DD` or a range `YYYY-MM-DD..YYYY-MM-DD` (both ends included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<String>,
    /// Days worked although their weekday is not (make-up working days), same forms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workdays: Vec<String>,
}

fn default_tz() -> String {
    "+08:00".into()
}

fn default_weekdays() -> Vec<String> {
    ["mon", "tue", "wed", "thu", "fri"].map(String::from).to_vec()
}

fn default_hours() -> Vec<String> {
    vec!["08:30-12:00".into(), "13:30-17:30".into()]
}

impl Default for CalendarSpec {
    fn default() -> Self {
        CalendarSpec {
            timezone: default_tz(),
            weekdays: default_weekdays(),
            hours: default_hours(),
            holidays: Vec::new(),
            workdays: Vec::new(),
        }
    }
}

/// A checked calendar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Calendar {
    tz: FixedOffset,
    weekdays: [bool; 7],
    hours: Vec<(NaiveTime, NaiveTime)>,
    holidays: BTreeSet<NaiveDate>,
    workdays: BTreeSet<NaiveDate>,
    day_length: TimeDelta,
}

/// How far a deadline may be looked for: a calendar with working time is never this sparse, but a
/// year of holidays typed by mistake must not make the engine loop for ever.
const HORIZON_DAYS: i64 = 3 * 366;

impl Calendar {
    /// Checks a written calendar; the error names the offending entry.
    pub fn new(spec: &CalendarSpec) -> Result<Calendar, String> {
        let tz: FixedOffset = spec
            .timezone
            .parse()
            .map_err(|_| format!("calendar timezone '{}' is not an offset such as +08:00", spec.timezone))?;
        let mut weekdays = [false; 7];
        for d in &spec.weekdays {
            let w: Weekday = d.parse().map_err(|_| format!("calendar weekday '{d}' is not one of mon … sun"))?;
            weekdays[w.num_days_from_monday() as usize] = true;
        }
        let mut hours = Vec::new();
        for h in &spec.hours {
            let bad = || format!("calendar hours '{h}' is not a range such as 08:30-12:00");
            let (a, b) = h.split_once('-').ok_or_else(bad)?;
            let a = NaiveTime::parse_from_str(a.trim(), "%H:%M").map_err(|_| bad())?;
            let b = NaiveTime::parse_from_str(b.trim(), "%H:%M").map_err(|_| bad())?;
            if b <= a {
                return Err(format!("calendar hours '{h}' end before they start"));
            }
            if hours.last().is_some_and(|&(_, e)| a < e) {
                return Err(format!("calendar hours '{h}' overlap or are out of order"));
            }
            hours.push((a, b));
        }
        if hours.is_empty() {
            return Err("the calendar needs working hours (e.g. hours = [\"08:30-12:00\", \"13:30-17:30\"])".into());
        }
        let days = |list: &[String], what: &str| -> Result<BTreeSet<NaiveDate>, String> {
            let mut out = BTreeSet::new();
            for s in list {
                let bad =
                    || format!("calendar {what} '{s}' is not a date (2026-10-01) or a range (2026-10-01..2026-10-07)");
                let (a, b) = s.split_once("..").unwrap_or((s, s));
                let a = NaiveDate::parse_from_str(a.trim(), "%Y-%m-%d").map_err(|_| bad())?;
                let b = NaiveDate::parse_from_str(b.trim(), "%Y-%m-%d").map_err(|_| bad())?;
                if b < a || (b - a).num_days() > 366 {
                    return Err(bad());
                }
                out.extend(a.iter_days().take_while(|d| *d <= b));
            }
            Ok(out)
        };
        let holidays = days(&spec.holidays, "holiday")?;
        let workdays = days(&spec.workdays, "working day")?;
        if let Some(d) = holidays.intersection(&workdays).next() {
            return Err(format!("calendar day {d} is both a holiday and a working day"));
        }
        if !weekdays.contains(&true) && workdays.is_empty() {
            return Err("the calendar has no working day".into());
        }
        let day_length = hours.iter().map(|&(a, b)| b - a).sum();
        Ok(Calendar { tz, weekdays, hours, holidays, workdays, day_length })
    }

    pub fn timezone(&self) -> FixedOffset {
        self.tz
    }

    /// The working time of one full working day ("1d" in a working-time limit).
    pub fn day_length(&self) -> TimeDelta {
        self.day_length
    }

    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        if self.holidays.contains(&d) {
            return false;
        }
        self.workdays.contains(&d) || self.weekdays[d.weekday().num_days_from_monday() as usize]
    }

    /// The working intervals of local day `d`, as instants.
    fn intervals(&self, d: NaiveDate) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        let on = self.is_working_day(d);
        self.hours.iter().filter(move |_| on).filter_map(move |&(a, b)| {
            let at = |t: NaiveTime| d.and_time(t).and_local_timezone(self.tz).single().map(|x| x.to_utc());
            Some((at(a)?, at(b)?))
        })
    }

    /// The instant at which `amount` of working time has passed since `from`. Work already
    /// underway counts from `from`; outside working hours the count starts at the next working
    /// hour. `None` only if no working time lies within three years.
    pub fn add(&self, from: DateTime<Utc>, amount: TimeDelta) -> Option<DateTime<Utc>> {
        let mut left = amount.max(TimeDelta::zero());
        let start = from.with_timezone(&self.tz).date_naive();
        for day in start.iter_days().take(HORIZON_DAYS as usize) {
            for (a, b) in self.intervals(day) {
                if b <= from {
                    continue;
                }
                let a = a.max(from);
                if b - a >= left {
                    return Some(a + left);
                }
                left -= b - a;
            }
        }
        None
    }

    /// The deadline of a limit written in a process (`8h`, `2d`) counted in working time: every 24
    /// hours of the limit is one working day ([`Calendar::day_length`]), the rest working hours.
    pub fn add_limit(&self, from: DateTime<Utc>, limit: TimeDelta) -> Option<DateTime<Utc>> {
        let days = limit.num_seconds().div_euclid(86_400);
        let rest = limit - TimeDelta::days(days);
        self.add(from, self.day_length * days as i32 + rest)
    }

    /// Working time in `[from, to)`.
    pub fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> TimeDelta {
        if to <= from {
            return TimeDelta::zero();
        }
        let start = from.with_timezone(&self.tz).date_naive();
        let end = to.with_timezone(&self.tz).date_naive();
        let mut sum = TimeDelta::zero();
        for day in start.iter_days().take_while(|d| *d <= end).take(HORIZON_DAYS as usize) {
            for (a, b) in self.intervals(day) {
                let (a, b) = (a.max(from), b.min(to));
                if b > a {
                    sum += b - a;
                }
            }
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> Calendar {
        Calendar::new(&CalendarSpec {
            // 2026: National Day holidays Thu 1 Oct … Wed 7 Oct, Sat 10 Oct worked.
            holidays: vec!["2026-10-01..2026-10-07".into()],
            workdays: vec!["2026-10-10".into()],
            ..CalendarSpec::default()
        })
        .unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_str(&format!("{s} +08:00"), "%Y-%m-%d %H:%M %z").unwrap().to_utc()
    }

    #[test]
    fn counts_only_working_hours() {
        let c = cal();
        // Thursday 16:00 + 4h: 1.5 h on Thursday, 2.5 h on Friday morning → Fri 11:00.
        assert_eq!(c.add(at("2026-11-26 16:00"), TimeDelta::hours(4)), Some(at("2026-11-27 11:00")));
        // Friday 17:00 + 1h: half an hour on Friday, the weekend skipped → Monday 09:00.
        assert_eq!(c.add(at("2026-11-27 17:00"), TimeDelta::hours(1)), Some(at("2026-11-30 09:00")));
        // Lunch is not worked: 11:30 + 1h → 14:00.
        assert_eq!(c.add(at("2026-11-26 11:30"), TimeDelta::hours(1)), Some(at("2026-11-26 14:00")));
        // Opened at night: the count starts at 08:30.
        assert_eq!(c.add(at("2026-11-26 02:00"), TimeDelta::minutes(30)), Some(at("2026-11-26 09:00")));
    }

    #[test]
    fn skips_holidays_and_works_make_up_days() {
        let c = cal();
        // Wed 30 Sep 17:00 + 1h: 1–7 Oct are holidays, Thu 8 Oct is worked → 09:00 on the 8th.
        assert_eq!(c.add(at("2026-09-30 17:00"), TimeDelta::hours(1)), Some(at("2026-10-08 09:00")));
        // Fri 9 Oct 17:00 + 1h: Saturday the 10th is a make-up working day.
        assert_eq!(c.add(at("2026-10-09 17:00"), TimeDelta::hours(1)), Some(at("2026-10-10 09:00")));
        assert!(!c.is_working_day(NaiveDate::from_ymd_opt(2026, 10, 2).unwrap()));
        assert!(c.is_working_day(NaiveDate::from_ymd_opt(2026, 10, 10).unwrap()));
        assert!(!c.is_working_day(NaiveDate::from_ymd_opt(2026, 10, 11).unwrap()));
    }

    #[test]
    fn between_is_the_inverse_of_add() {
        let c = cal();
        let from = at("2026-09-29 10:15");
        for h in [0, 1, 5, 7, 8, 9, 30, 100] {
            let d = TimeDelta::hours(h) + TimeDelta::minutes(7);
            let to = c.add(from, d).unwrap();
            assert_eq!(c.between(from, to), d, "{h}h");
        }
        assert_eq!(c.day_length(), TimeDelta::hours(7) + TimeDelta::minutes(30));
        assert_eq!(c.between(at("2026-10-02 09:00"), at("2026-10-03 09:00")), TimeDelta::zero());
    }

    #[test]
    fn refuses_bad_entries_with_their_text() {
        let bad = |f: fn(&mut CalendarSpec)| {
            let mut s = CalendarSpec::default();
            f(&mut s);
            Calendar::new(&s).unwrap_err()
        };
        assert!(bad(|s| s.timezone = "Beijing".into()).contains("Beijing"));
        assert!(bad(|s| s.weekdays = vec!["monday-ish".into()]).contains("monday-ish"));
        assert!(bad(|s| s.hours = vec!["12:00-08:00".into()]).contains("end before"));
        assert!(bad(|s| s.hours = vec!["08:00-12:00".into(), "11:00-13:00".into()]).contains("overlap"));
        assert!(bad(|s| s.holidays = vec!["2026-13-01".into()]).contains("2026-13-01"));
        assert!(
            bad(|s| {
                s.holidays = vec!["2026-10-10".into()];
                s.workdays = vec!["2026-10-10".into()];
            })
            .contains("both")
        );
        assert!(bad(|s| s.weekdays.clear()).contains("no working day"));
    }
}
