//! An appointment as an iCalendar file (RFC 5545) a patient adds to their calendar: the
//! visit's time in the location's zone (`TZID`, with the `VTIMEZONE` that zone had that year),
//! where, with whom, and what to bring — never the reason or the kind of visit.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::{OffsetComponents, Tz};
use std::fmt::Write as _;

/// What the calendar entry says.
#[derive(Debug, Clone)]
pub struct CalendarEntry<'a> {
    /// Unique and stable for the appointment (a rebooked file replaces the entry).
    pub uid: &'a str,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub zone: Tz,
    /// "Appointment at Main Street clinic".
    pub summary: &'a str,
    /// The address, or the video link.
    pub location: &'a str,
    /// With whom, what to bring, the clinic's phone.
    pub description: &'a str,
    pub stamp: DateTime<Utc>,
}

/// Text escaped as RFC 5545 §3.3.11 says: backslash, semicolon, comma, line breaks.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// One content line, folded at 75 octets (never inside a character), ending in CRLF.
fn line(out: &mut String, content: &str) {
    let mut used = 0;
    for c in content.chars() {
        if used + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += c.len_utf8();
    }
    out.push_str("\r\n");
}

fn offset_text(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    format!("{sign}{:02}{:02}", s / 3600, (s % 3600) / 60)
}

fn local(t: DateTime<Utc>, offset_seconds: i32) -> String {
    (t + Duration::seconds(i64::from(offset_seconds)))
        .format("%Y%m%dT%H%M%S")
        .to_string()
}

/// The zone's offsets in force during `year`: (UTC instant of the change, offset before,
/// offset after, daylight saving after), found a day at a time and then to the second.
fn transitions(zone: Tz, year: i32) -> Vec<(DateTime<Utc>, i32, i32, bool)> {
    let offset = |t: DateTime<Utc>| zone.offset_from_utc_datetime(&t.naive_utc());
    let total = |t: DateTime<Utc>| offset(t).fix().local_minus_utc();
    let mut out = Vec::new();
    let Some(first) = NaiveDate::from_ymd_opt(year, 1, 1) else {
        return out;
    };
    let mut day = Utc.from_utc_datetime(&first.and_hms_opt(0, 0, 0).unwrap_or_default());
    while day.year() == year {
        let next = day + Duration::days(1);
        if total(day) != total(next) {
            // The second it changed.
            let (mut lo, mut hi) = (day, next);
            while hi - lo > Duration::seconds(1) {
                let mid = lo + (hi - lo) / 2;
                if total(mid) == total(lo) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let dst = !offset(hi).dst_offset().is_zero();
            out.push((hi, total(lo), total(hi), dst));
        }
        day = next;
    }
    out
}

/// The `VTIMEZONE` of `zone` for the year of `at`: each change that year as its own
/// `STANDARD`/`DAYLIGHT` part, or one `STANDARD` part for a zone that does not change.
fn timezone(out: &mut String, zone: Tz, at: DateTime<Utc>) {
    line(out, "BEGIN:VTIMEZONE");
    line(out, &format!("TZID:{}", zone.name()));
    let changes = transitions(zone, at.year());
    if changes.is_empty() {
        let fixed = zone
            .offset_from_utc_datetime(&at.naive_utc())
            .fix()
            .local_minus_utc();
        line(out, "BEGIN:STANDARD");
        line(out, "DTSTART:19700101T000000");
        line(out, &format!("TZOFFSETFROM:{}", offset_text(fixed)));
        line(out, &format!("TZOFFSETTO:{}", offset_text(fixed)));
        line(out, "END:STANDARD");
    }
    for (when, from, to, dst) in changes {
        let part = if dst { "DAYLIGHT" } else { "STANDARD" };
        line(out, &format!("BEGIN:{part}"));
        // The onset in the local time in force before it (RFC 5545 §3.6.5).
        line(out, &format!("DTSTART:{}", local(when, from)));
        line(out, &format!("TZOFFSETFROM:{}", offset_text(from)));
        line(out, &format!("TZOFFSETTO:{}", offset_text(to)));
        line(out, &format!("END:{part}"));
    }
    line(out, "END:VTIMEZONE");
}

/// The `.ics` file of one appointment.
pub fn calendar(e: &CalendarEntry<'_>) -> String {
    let mut out = String::new();
    line(&mut out, "BEGIN:VCALENDAR");
    line(&mut out, "VERSION:2.0");
    line(&mut out, "PRODID:-//Salus//Patient portal//EN");
    line(&mut out, "CALSCALE:GREGORIAN");
    line(&mut out, "METHOD:PUBLISH");
    timezone(&mut out, e.zone, e.start);
    let in_zone = |t: DateTime<Utc>| t.with_timezone(&e.zone).format("%Y%m%dT%H%M%S").to_string();
    line(&mut out, "BEGIN:VEVENT");
    line(&mut out, &format!("UID:{}", escape(e.uid)));
    line(
        &mut out,
        &format!("DTSTAMP:{}", e.stamp.format("%Y%m%dT%H%M%SZ")),
    );
    let mut start = String::new();
    let _ = write!(start, "DTSTART;TZID={}:{}", e.zone.name(), in_zone(e.start));
    line(&mut out, &start);
    line(
        &mut out,
        &format!("DTEND;TZID={}:{}", e.zone.name(), in_zone(e.end)),
    );
    line(&mut out, &format!("SUMMARY:{}", escape(e.summary)));
    line(&mut out, &format!("LOCATION:{}", escape(e.location)));
    line(&mut out, &format!("DESCRIPTION:{}", escape(e.description)));
    line(&mut out, "END:VEVENT");
    line(&mut out, "END:VCALENDAR");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(zone: Tz, start: DateTime<Utc>) -> String {
        calendar(&CalendarEntry {
            uid: "0193-appt@salus",
            start,
            end: start + Duration::minutes(20),
            zone,
            summary: "Appointment at Main Street, Springfield",
            location: "1 Main Street; Springfield",
            description: "With Dr Mira Osei.\nBring your inhaler and a list of your medicines, please — it helps us a great deal.",
            stamp: Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap(),
        })
    }

    #[test]
    fn an_appointment_is_a_calendar_event_in_the_locations_zone_with_that_years_changes() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let ics = entry(berlin, Utc.with_ymd_and_hms(2026, 12, 7, 8, 0, 0).unwrap());
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"));
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
        assert!(
            ics.contains("\r\nDTSTART;TZID=Europe/Berlin:20261207T090000\r\n"),
            "{ics}"
        );
        assert!(ics.contains("\r\nDTEND;TZID=Europe/Berlin:20261207T092000\r\n"));
        // 2026: summer time from 29 March 02:00 (+0100 → +0200), back on 25 October 03:00.
        assert!(ics.contains(
            "BEGIN:DAYLIGHT\r\nDTSTART:20260329T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nEND:DAYLIGHT"
        ), "{ics}");
        assert!(ics.contains(
            "BEGIN:STANDARD\r\nDTSTART:20261025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD"
        ));
        assert!(
            ics.contains("LOCATION:1 Main Street\\; Springfield"),
            "escaped"
        );
        assert!(ics.contains("SUMMARY:Appointment at Main Street\\, Springfield"));
        assert!(ics.contains("DTSTAMP:20261204T120000Z"));
    }

    #[test]
    fn lines_are_folded_at_75_octets_and_a_zone_without_changes_has_one_part() {
        let ics = entry(Tz::UTC, Utc.with_ymd_and_hms(2026, 12, 7, 8, 0, 0).unwrap());
        for l in ics.split("\r\n") {
            assert!(l.len() <= 75, "{l:?} is {} octets", l.len());
        }
        let unfolded = ics.replace("\r\n ", "");
        assert!(unfolded.contains(
            "DESCRIPTION:With Dr Mira Osei.\\nBring your inhaler and a list of your medicines\\, please — it helps us a great deal."
        ));
        assert!(unfolded.contains(
            "BEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:+0000\r\nTZOFFSETTO:+0000"
        ));
        assert!(!unfolded.contains("DAYLIGHT"));
    }
}
