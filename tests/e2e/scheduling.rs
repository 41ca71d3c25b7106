//! Scheduling, as far as it is built: the appointment's calendar file read by an independent
//! iCalendar reader, in the location's zone on both sides of a daylight-saving change.

use chrono::{TimeZone, Utc};
use salus_domain::scheduling::ics::{CalendarEntry, calendar};

#[test]
fn an_independent_reader_finds_the_visit_at_its_local_time_in_the_locations_zone() {
    let Some(python) = salus_tests::fhir_validator() else {
        return;
    };
    for (zone, start, local) in [
        // Berlin, the Monday after clocks went forward (09:00 local = 07:00 UTC).
        (
            "Europe/Berlin",
            Utc.with_ymd_and_hms(2026, 3, 30, 7, 0, 0).unwrap(),
            "2026-03-30T09:00:00+02:00",
        ),
        // Berlin in winter (09:00 local = 08:00 UTC).
        (
            "Europe/Berlin",
            Utc.with_ymd_and_hms(2026, 12, 7, 8, 0, 0).unwrap(),
            "2026-12-07T09:00:00+01:00",
        ),
        // New York, the day after clocks went back.
        (
            "America/New_York",
            Utc.with_ymd_and_hms(2026, 11, 2, 14, 30, 0).unwrap(),
            "2026-11-02T09:30:00-05:00",
        ),
    ] {
        let ics = calendar(&CalendarEntry {
            uid: "0193-appt@salus",
            start,
            end: start + chrono::Duration::minutes(20),
            zone: zone.parse().unwrap(),
            summary: "Appointment at Main Street, Springfield",
            location: "1 Main Street; Springfield",
            description: "With Dr Mira Osei.\nBring your inhaler.",
            stamp: Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap(),
        });
        let read = salus_tests::ics_events(&python, ics.as_bytes())
            .unwrap_or_else(|e| panic!("the reader refused the file: {e}\n{ics}"));
        assert!(read.contains(&format!("start {local}")), "{zone}: {read}");
        assert!(read.contains(&format!("zone {zone}")), "{read}");
        assert!(
            read.contains("summary Appointment at Main Street, Springfield"),
            "{read}"
        );
        assert!(
            read.contains("location 1 Main Street; Springfield"),
            "{read}"
        );
    }
}
