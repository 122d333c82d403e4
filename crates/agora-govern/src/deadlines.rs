//! Review deadlines: how long each review step may take, and working-day arithmetic.
//!
//! Each step's due date is computed when the step starts and stored with it, so a deadline
//! announced to an applicant never moves when the hub's policy changes later.
//!
//! | step | starts when | ends when | default |
//! |---|---|---|---|
//! | completeness check | the application is submitted (again) | review starts, or changes are requested | 7 working days |
//! | scientific opinion | review starts | a reviewer records the opinion, or a decision is taken | 1 month |
//! | authorization | the scientific opinion is recorded | approved, rejected or changes requested | 2 months |
//!
//! Working days skip Saturdays, Sundays and the configured holidays. Days are UTC days.

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeDelta, Utc, Weekday};
use serde::{Deserialize, Serialize};

/// A length of time in the units review procedures are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Monday to Friday, skipping holidays ([`add_working_days`]).
    WorkingDays(u32),
    /// Calendar days of 24 hours.
    Days(u32),
    /// Calendar months, clamped to the end of shorter months.
    Months(u32),
}

/// How long each review step may take. Configurable per hub (see [`crate::GovernConfig`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadlines {
    /// Time for checking a submitted application is complete (default 7 working days).
    pub completeness_check: Period,
    /// Time for the scientific opinion once review starts (default 1 month).
    pub scientific_opinion: Period,
    /// Time for the decision once the opinion is recorded (default 2 months).
    pub authorization: Period,
    /// Public holidays, skipped like weekends by working-day periods.
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            completeness_check: Period::WorkingDays(7),
            scientific_opinion: Period::Months(1),
            authorization: Period::Months(2),
            holidays: Vec::new(),
        }
    }
}

/// A review step with a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// From submission until review starts or changes are requested.
    CompletenessCheck,
    /// From the start of review until a reviewer records the opinion or a decision is taken.
    ScientificOpinion,
    /// From the recorded opinion until approval, rejection or a request for changes.
    Authorization,
}

impl Step {
    /// The stored and serialized form, e.g. `completeness_check`.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::CompletenessCheck => "completeness_check",
            Step::ScientificOpinion => "scientific_opinion",
            Step::Authorization => "authorization",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "completeness_check" => Step::CompletenessCheck,
            "scientific_opinion" => Step::ScientificOpinion,
            "authorization" => Step::Authorization,
            _ => return None,
        })
    }
}

/// One step of one application's review, as shown to applicants and reviewers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepDeadline {
    /// Which step.
    pub step: Step,
    /// When the step started.
    pub started_at: DateTime<Utc>,
    /// When it is due, fixed when it started (later policy changes do not move it).
    pub due_at: DateTime<Utc>,
    /// `None` while the step is in progress.
    pub completed_at: Option<DateTime<Utc>>,
    /// Completed after its due date, or still open past it.
    pub overdue: bool,
}

impl Deadlines {
    /// How long `step` may take under this policy.
    pub fn period(&self, step: Step) -> Period {
        match step {
            Step::CompletenessCheck => self.completeness_check,
            Step::ScientificOpinion => self.scientific_opinion,
            Step::Authorization => self.authorization,
        }
    }

    /// When `step`, started at `start`, is due.
    pub fn due(&self, step: Step, start: DateTime<Utc>) -> DateTime<Utc> {
        add_period(start, self.period(step), &self.holidays)
    }
}

/// `start + period`. Months clamp to the end of shorter months (31 Jan + 1 month = 28/29
/// Feb); working days keep the time of day and land on a working day.
pub fn add_period(start: DateTime<Utc>, period: Period, holidays: &[NaiveDate]) -> DateTime<Utc> {
    match period {
        Period::Days(n) => start + TimeDelta::days(i64::from(n)),
        Period::Months(n) => start
            .checked_add_months(Months::new(n))
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
        Period::WorkingDays(n) => add_working_days(start, n, holidays),
    }
}

/// Adds `n` working days (Monday to Friday, not a holiday) to `start`, keeping the time of
/// day. Counting starts the day after `start`, whatever day `start` is: a step started on a
/// Friday or a Saturday with 1 working day is due on the Monday.
pub fn add_working_days(start: DateTime<Utc>, n: u32, holidays: &[NaiveDate]) -> DateTime<Utc> {
    let mut t = start;
    let mut left = n;
    while left > 0 {
        t += TimeDelta::days(1);
        if is_working_day(t.date_naive(), holidays) {
            left -= 1;
        }
    }
    t
}

/// Whether `day` is Monday to Friday and not one of `holidays`.
pub fn is_working_day(day: NaiveDate, holidays: &[NaiveDate]) -> bool {
    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !holidays.contains(&day)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 10, 30, 0).unwrap()
    }

    #[test]
    fn working_days_skip_weekends() {
        // Monday 2026-03-02 + 7 working days = Wednesday 2026-03-11.
        assert_eq!(add_working_days(at(2026, 3, 2), 7, &[]), at(2026, 3, 11));
        // Friday + 1 = Monday; Saturday + 1 = Monday; Sunday + 1 = Monday.
        assert_eq!(add_working_days(at(2026, 3, 6), 1, &[]), at(2026, 3, 9));
        assert_eq!(add_working_days(at(2026, 3, 7), 1, &[]), at(2026, 3, 9));
        assert_eq!(add_working_days(at(2026, 3, 8), 1, &[]), at(2026, 3, 9));
        // Friday + 5 = next Friday.
        assert_eq!(add_working_days(at(2026, 3, 6), 5, &[]), at(2026, 3, 13));
        assert_eq!(add_working_days(at(2026, 3, 6), 0, &[]), at(2026, 3, 6));
    }

    #[test]
    fn working_days_skip_holidays() {
        // Easter Monday 2026-04-06 is a holiday: Friday 04-03 + 1 = Tuesday 04-07.
        let holidays = [NaiveDate::from_ymd_opt(2026, 4, 6).unwrap()];
        assert_eq!(
            add_working_days(at(2026, 4, 3), 1, &holidays),
            at(2026, 4, 7)
        );
    }

    #[test]
    fn months_clamp_to_month_end() {
        assert_eq!(
            add_period(at(2026, 1, 31), Period::Months(1), &[]),
            at(2026, 2, 28)
        );
        assert_eq!(
            add_period(at(2026, 1, 15), Period::Months(2), &[]),
            at(2026, 3, 15)
        );
        assert_eq!(
            add_period(at(2026, 1, 15), Period::Days(3), &[]),
            at(2026, 1, 18)
        );
    }

    #[test]
    fn default_deadlines_match_the_procedure() {
        let d = Deadlines::default();
        let start = at(2026, 3, 2);
        assert_eq!(d.due(Step::CompletenessCheck, start), at(2026, 3, 11));
        assert_eq!(d.due(Step::ScientificOpinion, start), at(2026, 4, 2));
        assert_eq!(d.due(Step::Authorization, start), at(2026, 5, 2));
    }

    #[test]
    fn periods_serialize_readably() {
        let json = serde_json::to_string(&Deadlines::default()).unwrap();
        assert_eq!(
            json,
            r#"{"completeness_check":{"working_days":7},"scientific_opinion":{"months":1},"authorization":{"months":2},"holidays":[]}"#
        );
    }
}
