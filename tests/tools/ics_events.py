"""Reads an iCalendar file as an independent reader (the `icalendar` package) does and prints
each event: its start and end with their UTC offset, its zone, summary and location.

Usage: ics_events.py FILE. Exits non-zero when the file does not parse, or when an event's
zone is not defined by the file's own VTIMEZONE.
"""
import sys

from icalendar import Calendar

with open(sys.argv[1], "rb") as f:
    calendar = Calendar.from_ical(f.read())
zones = {str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")}
for event in calendar.walk("VEVENT"):
    start = event.decoded("DTSTART")
    end = event.decoded("DTEND")
    tzid = event["DTSTART"].params.get("TZID")
    if tzid not in zones:
        sys.exit(f"DTSTART names {tzid!r}, which no VTIMEZONE defines")
    print(f"start {start.isoformat()}")
    print(f"end {end.isoformat()}")
    print(f"zone {tzid}")
    print(f"summary {event.get('SUMMARY')}")
    print(f"location {event.get('LOCATION')}")
