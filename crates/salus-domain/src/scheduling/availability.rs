//! Weekly templates and the slot times they give in a location's time zone.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// "Mondays 09:00–12:00, 20-minute visits", from a date on (until one, when given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeeklyTemplate {
    pub weekday: Weekday,
    /// Wall-clock times in the location's zone: the first slot starts at `start`; the last
    /// ends at or before `end`.
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub minutes: u16,
    pub valid_from: NaiveDate,
    pub valid_until: Option<NaiveDate>,
}

/// A day without availability (a holiday, a day off), in the location's calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    pub date: NaiveDate,
}

/// One slot's time in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SlotTime {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The instant a wall-clock time on a date is in `tz`: the first of two when the clocks go
/// back, none when they skip it.
fn instant(tz: Tz, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    tz.from_local_datetime(&date.and_time(time))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// The slots a template gives on the dates `from..=until` in `tz`, except on `exceptions`,
/// in time order. Each slot is placed by its wall-clock start, so the local times hold across
/// a daylight-saving change.
pub fn slot_times(
    template: &WeeklyTemplate,
    tz: Tz,
    from: NaiveDate,
    until: NaiveDate,
    exceptions: &[Exception],
) -> Vec<SlotTime> {
    let mut out = Vec::new();
    if template.minutes == 0 || template.end <= template.start {
        return out;
    }
    let length = Duration::minutes(i64::from(template.minutes));
    let first = from.max(template.valid_from);
    let last = template.valid_until.map_or(until, |u| until.min(u));
    let mut date = first;
    while date <= last {
        if date.weekday() == template.weekday && !exceptions.iter().any(|e| e.date == date) {
            let mut wall = template.start;
            loop {
                let (wall_end, wrapped) = wall.overflowing_add_signed(length);
                if wrapped != 0 || wall_end > template.end {
                    break;
                }
                if let Some(start) = instant(tz, date, wall) {
                    out.push(SlotTime {
                        start,
                        end: start + length,
                    });
                }
                wall = wall_end;
            }
        }
        let Some(next) = date.succ_opt() else {
            break;
        };
        date = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }
    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }
    fn mondays_9_to_12() -> WeeklyTemplate {
        WeeklyTemplate {
            weekday: Weekday::Mon,
            start: t(9, 0),
            end: t(12, 0),
            minutes: 20,
            valid_from: d(2026, 1, 1),
            valid_until: None,
        }
    }

    #[test]
    fn a_template_gives_its_slots_on_its_weekday_within_its_hours() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        // Monday 7 December 2026 (winter time, UTC+1).
        let slots = slot_times(&mondays_9_to_12(), tz, d(2026, 12, 6), d(2026, 12, 8), &[]);
        assert_eq!(slots.len(), 9, "9:00 to 12:00 in 20 minutes");
        assert_eq!(
            slots[0].start,
            Utc.with_ymd_and_hms(2026, 12, 7, 8, 0, 0).unwrap()
        );
        assert_eq!(
            slots[8].end,
            Utc.with_ymd_and_hms(2026, 12, 7, 11, 0, 0).unwrap(),
            "the last ends at 12:00 local"
        );
        let off = [Exception {
            date: d(2026, 12, 7),
        }];
        assert!(
            slot_times(&mondays_9_to_12(), tz, d(2026, 12, 6), d(2026, 12, 8), &off).is_empty()
        );
    }

    #[test]
    fn local_times_hold_across_a_daylight_saving_change() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        // Clocks go forward on Sunday 29 March 2026: the Mondays before and after keep 09:00
        // local, which is 08:00 UTC before and 07:00 UTC after.
        let slots = slot_times(&mondays_9_to_12(), tz, d(2026, 3, 23), d(2026, 3, 30), &[]);
        assert_eq!(slots.len(), 18);
        assert_eq!(
            slots[0].start,
            Utc.with_ymd_and_hms(2026, 3, 23, 8, 0, 0).unwrap()
        );
        assert_eq!(
            slots[9].start,
            Utc.with_ymd_and_hms(2026, 3, 30, 7, 0, 0).unwrap()
        );
    }

    #[test]
    fn a_slot_in_the_skipped_hour_is_not_offered_and_a_repeated_hour_is_offered_once() {
        let tz: Tz = "America/New_York".parse().unwrap();
        // Sunday 8 March 2026, 02:00–03:00 does not exist; Sunday 1 November 2026, 01:00–02:00
        // happens twice.
        let night = |date| WeeklyTemplate {
            weekday: Weekday::Sun,
            start: t(1, 0),
            end: t(4, 0),
            minutes: 30,
            valid_from: date,
            valid_until: Some(date),
        };
        let spring = slot_times(
            &night(d(2026, 3, 8)),
            tz,
            d(2026, 3, 1),
            d(2026, 3, 31),
            &[],
        );
        let starts: Vec<_> = spring
            .iter()
            .map(|s| s.start.with_timezone(&tz).format("%H:%M").to_string())
            .collect();
        assert_eq!(
            starts,
            ["01:00", "01:30", "03:00", "03:30"],
            "02:00 and 02:30 skipped"
        );
        let autumn = slot_times(
            &night(d(2026, 11, 1)),
            tz,
            d(2026, 11, 1),
            d(2026, 11, 1),
            &[],
        );
        assert_eq!(autumn.len(), 6, "each wall-clock slot once");
        assert!(
            autumn.windows(2).all(|w| w[0].start < w[1].start),
            "in time order"
        );
    }

    #[test]
    fn a_template_counts_only_within_its_dates() {
        let tz: Tz = "UTC".parse().unwrap();
        let mut tpl = mondays_9_to_12();
        tpl.valid_from = d(2026, 12, 14);
        tpl.valid_until = Some(d(2026, 12, 21));
        let slots = slot_times(&tpl, tz, d(2026, 12, 1), d(2026, 12, 31), &[]);
        assert_eq!(slots.len(), 18, "two Mondays");
    }
}
