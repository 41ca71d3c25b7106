//! Dates and times as people read them, in one style for every page and printout:
//! "4 Dec 2026" for a day, "4 Dec 2026, 14:05 EST" for a moment — in the organisation's time
//! zone, with the zone named, because a result filed at 23:30 UTC happened "yesterday" for
//! a patient in Boston.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

/// A day: "4 Dec 2026".
pub fn day(d: NaiveDate) -> String {
    d.format("%-d %b %Y").to_string()
}

/// The day of an instant in `tz`: "4 Dec 2026".
pub fn day_of(at: DateTime<Utc>, tz: Tz) -> String {
    day(at.with_timezone(&tz).date_naive())
}

/// A moment in `tz`, with the zone: "4 Dec 2026, 14:05 EST".
pub fn moment(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%-d %b %Y, %H:%M %Z")
        .to_string()
}

/// A clinical time in `tz`: the day alone when it falls on midnight there (most dates in a
/// record carry no time of day), else the moment.
pub fn clinical(at: DateTime<Utc>, tz: Tz) -> String {
    use chrono::Timelike as _;
    let local = at.with_timezone(&tz);
    if local.hour() == 0 && local.minute() == 0 && local.second() == 0 {
        day(local.date_naive())
    } else {
        moment(at, tz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::America::New_York;

    #[test]
    fn one_style_in_the_organisations_zone() {
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 3, 30, 0).unwrap();
        assert_eq!(moment(at, New_York), "3 Dec 2026, 22:30 EST");
        assert_eq!(
            day_of(at, New_York),
            "3 Dec 2026",
            "still the 3rd in Boston"
        );
        assert_eq!(moment(at, Tz::UTC), "4 Dec 2026, 03:30 UTC");
        assert_eq!(
            day(NaiveDate::from_ymd_opt(2026, 1, 9).unwrap()),
            "9 Jan 2026"
        );
    }

    #[test]
    fn summer_time_is_named() {
        let july = Utc.with_ymd_and_hms(2026, 7, 1, 16, 0, 0).unwrap();
        assert_eq!(moment(july, New_York), "1 Jul 2026, 12:00 EDT");
        // The night the clocks go back: 01:30 happens twice, told apart by the zone.
        let first = Utc.with_ymd_and_hms(2026, 11, 1, 5, 30, 0).unwrap();
        let second = Utc.with_ymd_and_hms(2026, 11, 1, 6, 30, 0).unwrap();
        assert_eq!(moment(first, New_York), "1 Nov 2026, 01:30 EDT");
        assert_eq!(moment(second, New_York), "1 Nov 2026, 01:30 EST");
    }

    #[test]
    fn a_date_without_a_time_is_shown_as_a_day() {
        let midnight_there = New_York
            .with_ymd_and_hms(2026, 3, 2, 0, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(clinical(midnight_there, New_York), "2 Mar 2026");
        let morning = Utc.with_ymd_and_hms(2026, 3, 2, 14, 15, 0).unwrap();
        assert_eq!(clinical(morning, New_York), "2 Mar 2026, 09:15 EST");
    }
}
