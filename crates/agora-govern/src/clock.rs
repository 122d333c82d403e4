//! Time: the store's clock (injectable, so tests never sleep) and the one textual form
//! timestamps take in the store.

use std::sync::Mutex;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};

use crate::{Error, Result};

/// Where the store reads the current time from. Every governance decision that depends on
/// time (session expiry, login lockout, deadlines, permit status) asks the store's clock, so
/// tests can use a [`ManualClock`] instead of sleeping.
pub trait Clock: std::fmt::Debug + Send + Sync + 'static {
    /// The current time, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock (the default).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to. For tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock to `now` (backwards too).
    pub fn set(&self, now: DateTime<Utc>) {
        *self.now.lock().expect("clock poisoned") = now;
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: TimeDelta) {
        *self.now.lock().expect("clock poisoned") += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock poisoned")
    }
}

/// Timestamps are stored as fixed-width RFC 3339 UTC text with microseconds, so that text
/// order is time order on every backend.
pub(crate) fn format_ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| Error::Corrupt("stored timestamp is not RFC 3339".into()))
}

pub(crate) fn parse_ts_opt(s: Option<String>) -> Result<Option<DateTime<Utc>>> {
    s.as_deref().map(parse_ts).transpose()
}

/// The store's precision: microseconds (what the text form keeps).
pub(crate) fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_sort_as_text() {
        let a = truncate(Utc::now());
        assert_eq!(parse_ts(&format_ts(a)).unwrap(), a);
        let b = a + TimeDelta::microseconds(1);
        assert!(format_ts(a) < format_ts(b));
        let c = a + TimeDelta::days(400);
        assert!(format_ts(b) < format_ts(c));
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = Utc::now();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(TimeDelta::hours(1));
        assert_eq!(clock.now(), start + TimeDelta::hours(1));
    }
}
