//! Working days for the review time limit (审查时限): weekdays, minus public holidays, plus
//! the weekend days declared working days (调休). The county sets its calendar each year.
use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Calendar {
    /// Days off that would otherwise be working days.
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
    /// Weekend days that are working days.
    #[serde(default)]
    pub workdays: Vec<NaiveDate>,
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
}

impl Calendar {
    /// The national holidays of 2026 as the demo county entered them; a county replaces
    /// them through `PUT /calendar`.
    pub fn china_2026() -> Self {
        let range = |from: NaiveDate, to: NaiveDate| from.iter_days().take_while(move |x| *x <= to);
        let mut holidays: Vec<NaiveDate> = Vec::new();
        for (from, to) in [
            (d(2026, 1, 1), d(2026, 1, 3)),
            (d(2026, 2, 15), d(2026, 2, 23)),
            (d(2026, 4, 4), d(2026, 4, 6)),
            (d(2026, 5, 1), d(2026, 5, 5)),
            (d(2026, 6, 19), d(2026, 6, 21)),
            (d(2026, 9, 25), d(2026, 9, 27)),
            (d(2026, 10, 1), d(2026, 10, 7)),
        ] {
            holidays.extend(range(from, to));
        }
        let workdays = vec![d(2026, 1, 4), d(2026, 2, 14), d(2026, 2, 28), d(2026, 5, 9), d(2026, 9, 20), d(2026, 10, 10)];
        Self { holidays, workdays }
    }

    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        if self.workdays.contains(&day) {
            return true;
        }
        !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&day)
    }

    /// The `n`-th working day after `start` (`start` itself does not count); `start` for 0.
    pub fn add_working_days(&self, start: NaiveDate, n: u32) -> NaiveDate {
        let mut day = start;
        let mut left = n;
        while left > 0 {
            day = day.succ_opt().unwrap_or(day);
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        day
    }

    /// Working days in (from, to]; 0 when `to` is not after `from`.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        from.iter_days().skip(1).take_while(|x| *x <= to).filter(|x| self.is_working_day(*x)).count() as u32
    }
}

/// The review clock of one application: a due date that stops while documents are missing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReviewClock {
    pub due: NaiveDate,
    /// Working days left when the clock was paused; none while it runs.
    pub paused_with: Option<u32>,
}

pub const REVIEW_WORKING_DAYS: u32 = 7;

impl ReviewClock {
    pub fn start(calendar: &Calendar, submitted: NaiveDate) -> Self {
        Self { due: calendar.add_working_days(submitted, REVIEW_WORKING_DAYS), paused_with: None }
    }

    pub fn pause(&mut self, calendar: &Calendar, today: NaiveDate) {
        if self.paused_with.is_none() {
            self.paused_with = Some(calendar.working_days_between(today, self.due));
        }
    }

    pub fn resume(&mut self, calendar: &Calendar, today: NaiveDate) {
        if let Some(left) = self.paused_with.take() {
            self.due = calendar.add_working_days(today, left);
        }
    }

    /// Working days left (negative when overdue); the frozen number while paused.
    pub fn days_left(&self, calendar: &Calendar, today: NaiveDate) -> i64 {
        match self.paused_with {
            Some(left) => left as i64,
            None if today <= self.due => calendar.working_days_between(today, self.due) as i64,
            None => -(calendar.working_days_between(self.due, today) as i64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seven_working_days_skip_weekends_and_holidays() {
        let cal = Calendar::china_2026();
        // Monday 2026-11-23 → Wednesday 2026-12-02.
        assert_eq!(cal.add_working_days(d(2026, 11, 23), 7), d(2026, 12, 2));
        // Submitted on Wednesday 30 September: 1–7 October is the National Day holiday,
        // Saturday 10 October is a working day.
        assert_eq!(cal.add_working_days(d(2026, 9, 30), 7), d(2026, 10, 15));
        assert!(cal.is_working_day(d(2026, 10, 10)));
        assert!(!cal.is_working_day(d(2026, 10, 5)));
        assert_eq!(cal.working_days_between(d(2026, 11, 23), d(2026, 12, 2)), 7);
        assert_eq!(cal.working_days_between(d(2026, 12, 2), d(2026, 11, 23)), 0);
    }

    #[test]
    fn the_clock_stops_while_documents_are_missing() {
        let cal = Calendar::default();
        let mut clock = ReviewClock::start(&cal, d(2026, 11, 23)); // Monday
        assert_eq!(clock.due, d(2026, 12, 2));
        // Paused on Wednesday with 5 working days left …
        clock.pause(&cal, d(2026, 11, 25));
        assert_eq!(clock.days_left(&cal, d(2026, 12, 20)), 5, "frozen while paused");
        // … resumed two weeks later: 5 working days from then.
        clock.resume(&cal, d(2026, 12, 9));
        assert_eq!(clock.due, d(2026, 12, 16));
        assert_eq!(clock.days_left(&cal, d(2026, 12, 9)), 5);
        assert_eq!(clock.days_left(&cal, d(2026, 12, 18)), -2, "two working days overdue");
        // Pausing twice keeps the first count.
        clock.pause(&cal, d(2026, 12, 10));
        clock.pause(&cal, d(2026, 12, 15));
        assert_eq!(clock.paused_with, Some(4));
    }
}
