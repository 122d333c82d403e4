//! Dates as days since 1970-01-01 and their fast `YYYY-MM-DD` rendering.

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm).
pub(crate) const fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u32;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

pub(crate) const fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i32 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The fixed "today" of the synthetic world, so output never depends on the clock.
pub(crate) const REF_YEAR: i32 = 2024;
pub(crate) const REF_DAY: i32 = days_from_civil(REF_YEAR, 12, 31);

#[inline]
fn two(buf: &mut Vec<u8>, v: u32) {
    buf.push(b'0' + (v / 10) as u8);
    buf.push(b'0' + (v % 10) as u8);
}

/// `YYYY-MM-DD` (years 0..=9999).
#[inline]
pub(crate) fn date_bytes(days: i32) -> [u8; 10] {
    let (y, m, d) = civil_from_days(days);
    let y = y.clamp(0, 9999) as u32;
    let digit = |v: u32| b'0' + (v % 10) as u8;
    [
        digit(y / 1000),
        digit(y / 100),
        digit(y / 10),
        digit(y),
        b'-',
        digit(m / 10),
        digit(m),
        b'-',
        digit(d / 10),
        digit(d),
    ]
}

#[inline]
pub(crate) fn push_date(buf: &mut Vec<u8>, days: i32) {
    buf.extend_from_slice(&date_bytes(days));
}

/// Remembers the last rendered date: consecutive rows mostly share their visit's date.
#[derive(Debug)]
pub(crate) struct DateCache {
    day: i32,
    text: [u8; 10],
}

impl DateCache {
    pub(crate) fn new() -> Self {
        DateCache {
            day: i32::MIN,
            text: [0; 10],
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, buf: &mut Vec<u8>, days: i32) {
        if days != self.day {
            self.day = days;
            self.text = date_bytes(days);
        }
        buf.extend_from_slice(&self.text);
    }
}

/// Appends `YYYY-MM-DD HH:MM:SS` for a minute of the day.
#[inline]
pub(crate) fn push_datetime(buf: &mut Vec<u8>, days: i32, minute: u16) {
    push_date(buf, days);
    buf.push(b' ');
    two(buf, u32::from(minute / 60));
    buf.push(b':');
    two(buf, u32::from(minute % 60));
    buf.extend_from_slice(b":00");
}

/// Appends a deliberately impossible date such as `2021-13-45` (defect injection).
pub(crate) fn push_bad_date(buf: &mut Vec<u8>, days: i32, variant: u32) {
    let (y, _, _) = civil_from_days(days);
    let y = y.clamp(0, 9999) as u32;
    two(buf, y / 100);
    two(buf, y % 100);
    buf.extend_from_slice(match variant % 3 {
        0 => b"-13-45".as_slice(),
        1 => b"-02-30".as_slice(),
        _ => b"-00-00".as_slice(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(REF_DAY), (2024, 12, 31));
        for z in -40_000..40_000 {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        let mut b = Vec::new();
        push_datetime(&mut b, days_from_civil(2000, 2, 29), 13 * 60 + 7);
        assert_eq!(b, b"2000-02-29 13:07:00");
    }
}
