//! Appointments through the API: the front desk's set-up and its checks, the next available
//! time, booking with the rules, the calendar file (also read by an independent iCalendar
//! reader, in the location's zone on both sides of a daylight-saving change), moving,
//! cancelling up to the organisation's cut-off, the waitlist's email, reminders that say when
//! and where only, blocking and days off, the day view, the access history, fifty bookings
//! of one time at once, and the authorisation matrix.

use crate::identity::{call, staff};
use crate::records::linked_patient;
use crate::spawn_app_with;
use chrono::{TimeZone, Utc};
use poem::http::StatusCode;
use salus_domain::account::StaffRole;
use salus_domain::scheduling::ics::{CalendarEntry, calendar};
use serde_json::{Value, json};

/// What a set-up made: ids of the location, the provider and the visit type.
pub(crate) struct Clinic {
    pub(crate) location: String,
    pub(crate) provider: String,
    pub(crate) kind: String,
}

/// The front desk sets up one location in New York, one provider and a 20-minute visit type
/// (one per patient at a time), with hours 09:00–12:00 every day of the week.
pub(crate) async fn set_up(app: &crate::TestApp, desk: &str, max_per_patient: u32) -> Clinic {
    let post = |path: &'static str, body: Value| async move {
        let (status, b) = call(app, "POST", path, desk, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {b}");
        b
    };
    let b = post(
        "/api/v1/staff/schedule/locations",
        json!({"name": "Main Street", "address": "1 Main Street, Springfield", "time_zone": "America/New_York"}),
    )
    .await;
    let location = b["locations"][0]["id"].as_str().unwrap().to_owned();
    let b = post(
        "/api/v1/staff/schedule/providers",
        json!({"name": "Dr Mira Osei", "video_url": "https://video.example.test/osei"}),
    )
    .await;
    let provider = b["providers"][0]["id"].as_str().unwrap().to_owned();
    let b = post(
        "/api/v1/staff/schedule/visit-types",
        json!({"name": "Follow-up visit", "minutes": 20, "mode": "in_person", "online": "everyone",
               "max_per_patient": max_per_patient, "bring": "Your medication list"}),
    )
    .await;
    let kind = b["visit_types"][0]["id"].as_str().unwrap().to_owned();
    for day in [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ] {
        post(
            "/api/v1/staff/schedule/templates",
            json!({"provider_id": provider, "location_id": location, "visit_type_id": kind,
                   "weekday": day, "start": "09:00", "end": "12:00"}),
        )
        .await;
    }
    Clinic {
        location,
        provider,
        kind,
    }
}

/// The first `n` open times of the visit type for the bearer (staff name `patient`), from
/// `days` days ahead (0: now).
async fn open_times(
    app: &crate::TestApp,
    bearer: &str,
    kind: &str,
    n: u32,
    patient: Option<&str>,
    days: i64,
) -> Vec<Value> {
    let who = patient
        .map(|p| format!("&patient_id={p}"))
        .unwrap_or_default();
    let from = if days == 0 {
        String::new()
    } else {
        format!(
            "&from={}",
            (now(app) + chrono::Duration::days(days)).date_naive()
        )
    };
    let (status, b) = call(
        app,
        "GET",
        &format!("/api/v1/slots?visit_type_id={kind}&limit={n}{who}{from}"),
        bearer,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    b["slots"].as_array().unwrap().clone()
}

/// The demo clinic's chart with this record number.
pub(crate) async fn chart(app: &crate::TestApp, mrn: &str) -> salus_domain::patient::Patient {
    let org = salus_server::importer::target_org(&app.store, Some("demo-clinic"))
        .await
        .unwrap();
    let mrn = salus_domain::text::Mrn::parse(mrn).unwrap();
    salus_domain::patient::PatientRepository::find_by_mrn(&app.store, org.id, &mrn)
        .await
        .unwrap()
        .unwrap()
}

fn now(app: &crate::TestApp) -> chrono::DateTime<Utc> {
    salus_domain::Clock::now(app.clock.as_ref())
}

fn actions_of(history: &Value) -> Vec<String> {
    history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn the_front_desk_sets_up_hours_and_a_patient_books_the_next_time_moves_and_cancels_it() {
    let app = spawn_app_with(3, |_| {}).await;
    let desk = staff(
        &app,
        "demo-clinic",
        "desk@example.org",
        StaffRole::FrontDesk,
    )
    .await;
    let (ann, _) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let clinic = set_up(&app, &desk, 1).await;

    // The set-up as staff see it; its checks answer stable codes and store nothing.
    let (_, setup) = call(&app, "GET", "/api/v1/staff/schedule/setup", &desk, None).await;
    assert_eq!(setup["templates"].as_array().unwrap().len(), 7);
    assert_eq!(setup["cancel_cutoff_hours"], 24);
    for (path, body, code) in [
        (
            "/api/v1/staff/schedule/locations",
            json!({"name": "X", "address": "Y", "time_zone": "Mars/Olympus"}),
            "invalid_time_zone",
        ),
        (
            "/api/v1/staff/schedule/visit-types",
            json!({"name": "X", "minutes": 7, "mode": "in_person", "online": "everyone", "max_per_patient": 1}),
            "invalid_minutes",
        ),
        (
            "/api/v1/staff/schedule/visit-types",
            json!({"name": "Follow-up visit", "minutes": 20, "mode": "in_person", "online": "everyone", "max_per_patient": 1}),
            "visit_type_exists",
        ),
        (
            "/api/v1/staff/schedule/templates",
            json!({"provider_id": clinic.provider, "location_id": clinic.location, "visit_type_id": clinic.kind,
                   "weekday": "funday", "start": "09:00", "end": "12:00"}),
            "invalid_weekday",
        ),
        (
            "/api/v1/staff/schedule/templates",
            json!({"provider_id": clinic.provider, "location_id": clinic.location, "visit_type_id": clinic.kind,
                   "weekday": "monday", "start": "12:00", "end": "09:00"}),
            "invalid_end",
        ),
        (
            "/api/v1/staff/schedule/providers",
            json!({"name": "Dr X", "video_url": "javascript:alert(1)"}),
            "invalid_video_url",
        ),
    ] {
        let (status, b) = call(&app, "POST", path, &desk, Some(body)).await;
        assert_eq!(
            (status, b["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{path}: {b}"
        );
    }
    let (_, same) = call(&app, "GET", "/api/v1/staff/schedule/setup", &desk, None).await;
    assert_eq!(
        same["visit_types"].as_array().unwrap().len(),
        1,
        "nothing stored"
    );

    // The patient's options: no templates, no video rooms.
    let (status, options) = call(&app, "GET", "/api/v1/booking/options", &ann, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(options.get("templates").is_none(), "{options}");
    assert!(options["providers"][0].get("video_url").is_none());
    assert_eq!(options["visit_types"][0]["bring"], "Your medication list");

    // The next available time is the first in the future, at 09:00 in New York (EST).
    let times = open_times(&app, &ann, &clinic.kind, 12, None, 0).await;
    assert_eq!(times.len(), 12);
    let first: chrono::DateTime<Utc> = times[0]["start"].as_str().unwrap().parse().unwrap();
    assert!(first > now(&app), "{first}");
    assert!(first <= now(&app) + chrono::Duration::days(2));
    let morning: Vec<&str> = times
        .iter()
        .map(|t| t["local_start"].as_str().unwrap())
        .collect();
    assert!(
        morning.iter().any(|t| t.ends_with("T09:00:00-05:00")),
        "{morning:?}"
    );
    // From three days ahead, well before the cut-off, for what follows.
    let times = open_times(&app, &ann, &clinic.kind, 12, None, 3).await;

    // Book the third time with a reason; the confirmation says when, where, what to bring.
    let slot = times[2]["id"].as_str().unwrap();
    let (status, booked) = call(
        &app,
        "POST",
        "/api/v1/appointments",
        &ann,
        Some(json!({"slot_id": slot, "reason": "Blood pressure check"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    assert_eq!(booked["place"], "Main Street, 1 Main Street, Springfield");
    assert_eq!(booked["visit_type"]["bring"], "Your medication list");
    assert_eq!(booked["time_zone"], "America/New_York");
    assert_eq!(booked["changeable"], true);
    let id = booked["id"].as_str().unwrap().to_owned();

    // One of this kind at a time; a taken time is taken.
    let (status, b) = call(
        &app,
        "POST",
        "/api/v1/appointments",
        &ann,
        Some(json!({"slot_id": times[5]["id"], "reason": ""})),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("too_many_appointments"))
    );
    let (bo, _) = linked_patient(&app, "SYN0000001", "bo@example.org").await;
    let (status, b) = call(
        &app,
        "POST",
        "/api/v1/appointments",
        &bo,
        Some(json!({"slot_id": slot})),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("slot_taken"))
    );
    let long = "x".repeat(501);
    let (status, b) = call(
        &app,
        "POST",
        "/api/v1/appointments",
        &bo,
        Some(json!({"slot_id": times[6]["id"], "reason": long})),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_reason"))
    );

    // The calendar file: RFC 5545, the location's zone, no reason, no kind of visit.
    let resp = app
        .client
        .get(format!("/api/v1/appointments/{id}/calendar"))
        .header("authorization", format!("Bearer {ann}"))
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.assert_content_type("text/calendar; charset=utf-8");
    let ics = crate::text(resp).await;
    assert!(ics.starts_with("BEGIN:VCALENDAR\r\n"), "{ics}");
    assert!(ics.contains("TZID=America/New_York"), "{ics}");
    assert!(
        !ics.contains("Blood pressure") && !ics.contains("Follow-up"),
        "{ics}"
    );
    if let Some(python) = salus_tests::fhir_validator() {
        let read = salus_tests::ics_events(&python, ics.as_bytes()).unwrap();
        let local = booked["local_start"].as_str().unwrap();
        assert!(
            read.contains(&format!("start {local}")),
            "{read} vs {local}"
        );
    }

    // Move it to the fourth time: taken first, then the third freed.
    let (status, moved) = call(
        &app,
        "POST",
        &format!("/api/v1/appointments/{id}/reschedule"),
        &ann,
        Some(json!({"slot_id": times[3]["id"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["slot_id"], times[3]["id"]);
    let again = open_times(&app, &ann, &clinic.kind, 12, None, 3).await;
    assert!(
        again.iter().any(|t| t["id"] == times[2]["id"]),
        "the old time is open again"
    );
    assert!(!again.iter().any(|t| t["id"] == times[3]["id"]));

    // Bo books a later time and waits for an earlier one; Ann cancels; Bo is emailed.
    let (status, bos) = call(
        &app,
        "POST",
        "/api/v1/appointments",
        &bo,
        Some(json!({"slot_id": times[10]["id"], "reason": "Rash"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{bos}");
    let bos_id = bos["id"].as_str().unwrap().to_owned();
    let (status, waiting) = call(
        &app,
        "PUT",
        &format!("/api/v1/appointments/{bos_id}/waitlist"),
        &bo,
        None,
    )
    .await;
    assert_eq!(
        (status, waiting["waitlisted"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let mails_before = app.emails().len();
    let (status, cancelled) = call(
        &app,
        "POST",
        &format!("/api/v1/appointments/{id}/cancel"),
        &ann,
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (status, cancelled["state"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    let mails = app.emails();
    let told: Vec<&String> = mails[mails_before..]
        .iter()
        .filter(|m| m.contains("An earlier appointment time opened"))
        .collect();
    assert_eq!(told.len(), 1, "Bo is told");
    assert!(told[0].contains("bo@example.org"));
    for secret in ["Rash", "Follow-up", "Osei", "Blood pressure"] {
        assert!(!told[0].contains(secret), "{secret} in the email");
    }
    // Bo moves to the freed time himself; he no longer waits.
    let (status, b) = call(
        &app,
        "POST",
        &format!("/api/v1/appointments/{bos_id}/reschedule"),
        &bo,
        Some(json!({"slot_id": times[3]["id"]})),
    )
    .await;
    assert_eq!(
        (status, b["waitlisted"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{b}"
    );
    let (status, b) = call(
        &app,
        "POST",
        &format!("/api/v1/appointments/{id}/cancel"),
        &ann,
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_booked"))
    );

    // The cut-off: Ann books the next available time, always less than a day ahead (the
    // hours are 09:00-12:00 every day): online she may not cancel it; the front desk may,
    // with a reason she reads.
    let next = open_times(&app, &ann, &clinic.kind, 1, None, 0).await;
    let (status, late) = call(
        &app,
        "POST",
        "/api/v1/appointments",
        &ann,
        Some(json!({"slot_id": next[0]["id"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{late}");
    let late_id = late["id"].as_str().unwrap().to_owned();

    // The reminder of a visit within a day: when and where only, once.
    let sent = app.scheduling().send_reminders(24).await.unwrap();
    assert!(sent >= 1, "{sent}");
    assert_eq!(
        app.scheduling().send_reminders(24).await.unwrap(),
        0,
        "once"
    );
    let mails = app.emails();
    let reminder = mails
        .iter()
        .rev()
        .find(|m| m.contains("Appointment reminder") && m.contains("ann@example.org"))
        .expect("Ann's reminder");
    assert!(
        reminder.contains("Main Street, 1 Main Street, Springfield"),
        "{reminder}"
    );
    for secret in ["Follow-up", "Osei", "Blood pressure", "medication list"] {
        assert!(!reminder.contains(secret), "{secret} in the reminder");
    }

    let (status, b) = call(
        &app,
        "POST",
        &format!("/api/v1/appointments/{late_id}/cancel"),
        &ann,
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("past_cutoff"))
    );
    let (_, one) = call(
        &app,
        "GET",
        &format!("/api/v1/appointments/{late_id}"),
        &ann,
        None,
    )
    .await;
    assert_eq!(one["changeable"], false);
    let (status, b) = call(
        &app,
        "POST",
        &format!("/api/v1/appointments/{late_id}/cancel"),
        &desk,
        Some(json!({"reason": "Dr Osei is ill today"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    // Ann is told that the clinic changed an appointment: not which, not why.
    let changed = app
        .emails()
        .into_iter()
        .filter(|m| m.contains("An appointment changed") && m.contains("ann@example.org"))
        .collect::<Vec<_>>();
    assert_eq!(changed.len(), 1);
    assert!(!changed[0].contains("ill today") && !changed[0].contains("Follow-up"));
    let (_, mine) = call(&app, "GET", "/api/v1/appointments", &ann, None).await;
    let cancelled: Vec<&Value> = mine["appointments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["id"] == late_id.as_str())
        .collect();
    assert_eq!(cancelled[0]["cancel_reason"], "Dr Osei is ill today");

    // Every step is in Ann's access history, in its own words.
    let (_, history) = call(&app, "GET", "/api/v1/me/access-history", &ann, None).await;
    let actions = actions_of(&history);
    for expected in [
        "book",
        "reschedule",
        "cancel_appointment",
        "view_appointments",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected}: {actions:?}"
        );
    }
}

#[tokio::test]
async fn the_front_desk_sees_the_day_blocks_times_takes_days_off_and_books_for_a_patient() {
    let app = spawn_app_with(3, |_| {}).await;
    let desk = staff(
        &app,
        "demo-clinic",
        "desk@example.org",
        StaffRole::FrontDesk,
    )
    .await;
    let (ann, _) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let clinic = set_up(&app, &desk, 2).await;
    let chart = chart(&app, "SYN0000000").await;
    let patient = chart.id.to_string();

    // The front desk books for Ann (naming her chart); she sees it as hers.
    let times = open_times(&app, &desk, &clinic.kind, 8, Some(&patient), 3).await;
    let (status, b) = call(
        &app,
        "POST",
        "/api/v1/appointments",
        &desk,
        Some(json!({"slot_id": times[0]["id"], "patient_id": patient, "reason": "Called in"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    let (_, mine) = call(&app, "GET", "/api/v1/appointments", &ann, None).await;
    assert_eq!(mine["appointments"].as_array().unwrap().len(), 1);

    // The day view: that day's nine times, one booked with the patient's name.
    let local: chrono::DateTime<chrono::FixedOffset> =
        chrono::DateTime::parse_from_rfc3339(times[0]["local_start"].as_str().unwrap()).unwrap();
    let day = local.date_naive();
    let (status, view) = call(
        &app,
        "GET",
        &format!(
            "/api/v1/staff/schedule?from={day}&location_id={}",
            clinic.location
        ),
        &desk,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let entries = view["entries"].as_array().unwrap();
    let booked: Vec<&Value> = entries
        .iter()
        .filter(|e| e["slot"]["state"] == "booked")
        .collect();
    assert_eq!(booked.len(), 1);
    assert_eq!(booked[0]["patient_name"], chart.name.full().as_str());
    assert_eq!(booked[0]["reason"], "Called in");
    let (_, week) = call(
        &app,
        "GET",
        &format!("/api/v1/staff/schedule?from={day}&days=7"),
        &desk,
        None,
    )
    .await;
    assert!(week["entries"].as_array().unwrap().len() > entries.len());
    let (status, b) = call(
        &app,
        "GET",
        &format!("/api/v1/staff/schedule?from={day}&days=9"),
        &desk,
        None,
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_days"))
    );

    // Blocking: the time leaves the search and comes back; a booked one cannot be blocked.
    let free = times[1]["id"].as_str().unwrap();
    let (status, _) = call(
        &app,
        "POST",
        &format!("/api/v1/staff/slots/{free}/block"),
        &desk,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let now_open = open_times(&app, &ann, &clinic.kind, 8, None, 3).await;
    assert!(!now_open.iter().any(|t| t["id"] == free));
    let (status, _) = call(
        &app,
        "POST",
        &format!("/api/v1/staff/slots/{free}/unblock"),
        &desk,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        open_times(&app, &ann, &clinic.kind, 8, None, 3)
            .await
            .iter()
            .any(|t| t["id"] == free)
    );
    let taken = times[0]["id"].as_str().unwrap();
    let (status, b) = call(
        &app,
        "POST",
        &format!("/api/v1/staff/slots/{taken}/block"),
        &desk,
        None,
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("slot_taken"))
    );

    // A day off: that day's open times go, the booked one stays.
    let (status, off) = call(
        &app,
        "POST",
        "/api/v1/staff/schedule/days-off",
        &desk,
        Some(
            json!({"provider_id": clinic.provider, "date": day.to_string(), "reason": "Training"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{off}");
    assert!(off["removed_slots"].as_u64().unwrap() >= 1, "{off}");
    let (_, view) = call(
        &app,
        "GET",
        &format!(
            "/api/v1/staff/schedule?from={day}&location_id={}",
            clinic.location
        ),
        &desk,
        None,
    )
    .await;
    let states: Vec<&str> = view["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["slot"]["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["booked"], "only the booked visit is left that day");
    // Generating again does not bring the day back.
    app.scheduling().generate_all().await.unwrap();
    let (_, view) = call(
        &app,
        "GET",
        &format!(
            "/api/v1/staff/schedule?from={day}&location_id={}",
            clinic.location
        ),
        &desk,
        None,
    )
    .await;
    assert_eq!(view["entries"].as_array().unwrap().len(), 1);

    // The organisation's own cut-off.
    let (status, b) = call(
        &app,
        "PUT",
        "/api/v1/staff/schedule/cutoff",
        &desk,
        Some(json!({"hours": 48})),
    )
    .await;
    assert_eq!(
        (status, b["cancel_cutoff_hours"].as_u64()),
        (StatusCode::OK, Some(48))
    );
    let (status, b) = call(
        &app,
        "PUT",
        "/api/v1/staff/schedule/cutoff",
        &desk,
        Some(json!({"hours": 500})),
    )
    .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_cutoff"))
    );

    // The front desk's look at the day is in Ann's history.
    let (_, history) = call(&app, "GET", "/api/v1/me/access-history", &ann, None).await;
    assert!(
        actions_of(&history)
            .iter()
            .any(|a| a == "view_appointments")
    );
}

#[tokio::test]
async fn fifty_bookings_of_one_time_at_once_give_one_201_and_forty_nine_slot_taken() {
    let app = spawn_app_with(50, |_| {}).await;
    let desk = staff(
        &app,
        "demo-clinic",
        "desk@example.org",
        StaffRole::FrontDesk,
    )
    .await;
    let clinic = set_up(&app, &desk, 1).await;
    let mut charts = Vec::new();
    for n in 0..50 {
        charts.push(chart(&app, &format!("SYN{n:07}")).await.id.to_string());
    }
    let slot = open_times(&app, &desk, &clinic.kind, 1, Some(&charts[0]), 0).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tries = charts.iter().map(|patient| {
        call(
            &app,
            "POST",
            "/api/v1/appointments",
            &desk,
            Some(json!({"slot_id": slot, "patient_id": patient})),
        )
    });
    let answers = futures_util::future::join_all(tries).await;
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let taken = answers
        .iter()
        .filter(|(s, b)| *s == StatusCode::CONFLICT && b["code"] == "slot_taken")
        .count();
    assert_eq!(
        (created, taken),
        (1, 49),
        "{:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    let (_, view) = call(
        &app,
        "GET",
        &format!(
            "/api/v1/staff/schedule?from={}&days=7",
            now(&app).date_naive() - chrono::Duration::days(1)
        ),
        &desk,
        None,
    )
    .await;
    let booked = view["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["slot"]["state"] == "booked")
        .count();
    assert_eq!(booked, 1, "one appointment in the schedule");
}

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

#[tokio::test]
async fn every_scheduling_operation_answers_each_kind_of_actor_as_the_table_says() {
    let app = spawn_app_with(3, |_| {}).await;
    let desk = staff(
        &app,
        "demo-clinic",
        "desk@example.org",
        StaffRole::FrontDesk,
    )
    .await;
    let doc = staff(&app, "demo-clinic", "doc@example.org", StaffRole::Clinician).await;
    let other_org = staff(
        &app,
        "riverside-family",
        "desk@riverside.example",
        StaffRole::FrontDesk,
    )
    .await;
    let (ann, _) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let (bo, _) = linked_patient(&app, "SYN0000001", "bo@example.org").await;
    let clinic = set_up(&app, &desk, 2).await;
    let with = crate::records::proxy_of(
        &app,
        &ann,
        "with@example.org",
        &["encounter"],
        &["read", "book"],
    )
    .await;
    let without =
        crate::records::proxy_of(&app, &ann, "without@example.org", &["encounter"], &["read"])
            .await;
    let (_, me) = call(&app, "GET", "/api/v1/appointments", &ann, None).await;
    assert!(me["appointments"].as_array().unwrap().is_empty());
    let patient = chart(&app, "SYN0000000").await.id.to_string();
    let times = open_times(&app, &ann, &clinic.kind, 4, None, 3).await;
    let slot = |n: usize| times[n]["id"].as_str().unwrap().to_owned();
    let (_, a) = call(
        &app,
        "POST",
        "/api/v1/appointments",
        &ann,
        Some(json!({"slot_id": slot(0)})),
    )
    .await;
    let a = a["id"].as_str().unwrap().to_owned();
    let day = (now(&app) + chrono::Duration::days(80)).date_naive();
    let actors: [crate::MatrixActor; 8] = [
        ("owner", Some(ann), None),
        ("other patient", Some(bo), None),
        ("proxy with the grant", Some(with.0), Some(with.1)),
        ("proxy without it", Some(without.0), Some(without.1)),
        ("clinician", Some(doc), None),
        ("front desk", Some(desk), None),
        ("another organisation", Some(other_org), None),
        ("anonymous", None, None),
    ];
    let mine = format!("?patient_id={patient}");
    let staff_only = [403, 403, 403, 403, 403, 201, 201, 401];
    let rows: Vec<crate::MatrixRow<8>> = vec![
        (
            "get",
            "/v1/booking/options",
            format!("/api/v1/booking/options{mine}"),
            None,
            [200, 404, 200, 404, 404, 200, 404, 401],
        ),
        (
            "get",
            "/v1/slots",
            format!("/api/v1/slots{mine}&visit_type_id={}", clinic.kind),
            None,
            [200, 404, 200, 404, 404, 200, 404, 401],
        ),
        (
            "get",
            "/v1/appointments",
            format!("/api/v1/appointments{mine}"),
            None,
            [200, 404, 200, 404, 404, 200, 404, 401],
        ),
        // The owner takes the time; for the others it is gone (or not theirs to book).
        (
            "post",
            "/v1/appointments",
            "/api/v1/appointments".into(),
            Some(json!({"slot_id": slot(1), "patient_id": patient})),
            [201, 404, 409, 404, 404, 409, 404, 401],
        ),
        (
            "get",
            "/v1/appointments/{id}",
            format!("/api/v1/appointments/{a}"),
            None,
            [200, 404, 200, 404, 404, 200, 404, 401],
        ),
        (
            "get",
            "/v1/appointments/{id}/calendar",
            format!("/api/v1/appointments/{a}/calendar"),
            None,
            [200, 404, 200, 404, 404, 200, 404, 401],
        ),
        (
            "put",
            "/v1/appointments/{id}/waitlist",
            format!("/api/v1/appointments/{a}/waitlist"),
            None,
            [200, 404, 200, 404, 404, 200, 404, 401],
        ),
        (
            "delete",
            "/v1/appointments/{id}/waitlist",
            format!("/api/v1/appointments/{a}/waitlist"),
            None,
            [200, 404, 200, 404, 404, 200, 404, 401],
        ),
        // Moved by the owner; the time is then taken for anyone else who tries.
        (
            "post",
            "/v1/appointments/{id}/reschedule",
            format!("/api/v1/appointments/{a}/reschedule"),
            Some(json!({"slot_id": slot(2)})),
            [200, 404, 409, 404, 404, 409, 404, 401],
        ),
        (
            "post",
            "/v1/appointments/{id}/cancel",
            format!("/api/v1/appointments/{a}/cancel"),
            Some(json!({})),
            [200, 404, 409, 404, 404, 409, 404, 401],
        ),
        (
            "get",
            "/v1/staff/schedule/setup",
            "/api/v1/staff/schedule/setup".into(),
            None,
            [403, 403, 403, 403, 403, 200, 200, 401],
        ),
        (
            "post",
            "/v1/staff/schedule/locations",
            "/api/v1/staff/schedule/locations".into(),
            Some(
                json!({"name": "Annex", "address": "2 Main Street", "time_zone": "America/Chicago"}),
            ),
            staff_only,
        ),
        (
            "post",
            "/v1/staff/schedule/providers",
            "/api/v1/staff/schedule/providers".into(),
            Some(json!({"name": "Dr Lee"})),
            staff_only,
        ),
        (
            "post",
            "/v1/staff/schedule/visit-types",
            "/api/v1/staff/schedule/visit-types".into(),
            Some(
                json!({"name": "Flu shot", "minutes": 10, "mode": "in_person",
                        "online": "everyone", "max_per_patient": 1}),
            ),
            staff_only,
        ),
        // Another organisation's staff cannot name this one's provider.
        (
            "post",
            "/v1/staff/schedule/templates",
            "/api/v1/staff/schedule/templates".into(),
            Some(
                json!({"provider_id": clinic.provider, "location_id": clinic.location,
                        "visit_type_id": clinic.kind, "weekday": "monday",
                        "start": "13:00", "end": "14:00"}),
            ),
            [403, 403, 403, 403, 403, 201, 400, 401],
        ),
        (
            "post",
            "/v1/staff/schedule/days-off",
            "/api/v1/staff/schedule/days-off".into(),
            Some(json!({"provider_id": clinic.provider, "date": day.to_string()})),
            [403, 403, 403, 403, 403, 201, 400, 401],
        ),
        (
            "put",
            "/v1/staff/schedule/cutoff",
            "/api/v1/staff/schedule/cutoff".into(),
            Some(json!({"hours": 24})),
            [403, 403, 403, 403, 403, 200, 200, 401],
        ),
        (
            "post",
            "/v1/staff/slots/{id}/block",
            format!("/api/v1/staff/slots/{}/block", slot(3)),
            None,
            [403, 403, 403, 403, 403, 204, 404, 401],
        ),
        (
            "post",
            "/v1/staff/slots/{id}/unblock",
            format!("/api/v1/staff/slots/{}/unblock", slot(3)),
            None,
            [403, 403, 403, 403, 403, 204, 404, 401],
        ),
        (
            "get",
            "/v1/staff/schedule",
            format!("/api/v1/staff/schedule?from={day}"),
            None,
            [403, 403, 403, 403, 403, 200, 200, 401],
        ),
    ];
    crate::check_matrix(&app, "Scheduling", &actors, &rows).await;
}

#[tokio::test]
async fn the_patients_fhir_export_carries_their_appointments_and_the_validator_accepts_them() {
    let app = spawn_app_with(2, |_| {}).await;
    let desk = staff(
        &app,
        "demo-clinic",
        "desk@example.org",
        StaffRole::FrontDesk,
    )
    .await;
    let (ann, _) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let clinic = set_up(&app, &desk, 2).await;
    let times = open_times(&app, &ann, &clinic.kind, 4, None, 3).await;
    let mut ids = Vec::new();
    for (n, reason) in [(0, "Knee pain"), (2, "")] {
        let (status, b) = call(
            &app,
            "POST",
            "/api/v1/appointments",
            &ann,
            Some(json!({"slot_id": times[n]["id"], "reason": reason})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{b}");
        ids.push(b["id"].as_str().unwrap().to_owned());
    }
    let (status, _) = call(
        &app,
        "POST",
        &format!("/api/v1/appointments/{}/cancel", ids[1]),
        &desk,
        Some(json!({"reason": "The clinic is closed that day"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (status, _, _, body) = crate::export::download(&app, "/api/v1/export/fhir", &ann).await;
    assert_eq!(status, StatusCode::OK);
    let bundle: Value = serde_json::from_slice(&body).unwrap();
    let appointments: Vec<&Value> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "Appointment")
        .collect();
    assert_eq!(appointments.len(), 2, "both, booked and cancelled");
    let booked = appointments
        .iter()
        .find(|a| a["id"] == ids[0].as_str())
        .unwrap();
    assert_eq!(booked["status"], "booked");
    let instant = |v: &Value| {
        v.as_str()
            .unwrap()
            .parse::<chrono::DateTime<Utc>>()
            .unwrap()
    };
    assert_eq!(instant(&booked["start"]), instant(&times[0]["start"]));
    assert_eq!(booked["minutesDuration"], 20);
    assert_eq!(booked["reasonCode"][0]["text"], "Knee pain");
    assert_eq!(booked["appointmentType"]["text"], "Follow-up visit");
    let patient_ref = bundle["entry"][0]["fullUrl"].clone();
    assert!(
        booked["participant"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["actor"]["reference"] == patient_ref),
        "{booked}"
    );
    let cancelled = appointments
        .iter()
        .find(|a| a["id"] == ids[1].as_str())
        .unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(
        cancelled["cancelationReason"]["text"],
        "The clinic is closed that day"
    );
    if let Some(python) = salus_tests::fhir_validator() {
        salus_tests::validate_fhir(&python, &[&body])
            .unwrap_or_else(|report| panic!("the validator refused the export: {report}"));
    }

    // A proxy without the booking grant gets no appointments in their download.
    let reader = crate::records::proxy_of(
        &app,
        &ann,
        "reader@example.org",
        &["encounter"],
        &["read", "export"],
    )
    .await;
    let resp = app
        .client
        .get("/api/v1/export/fhir")
        .header("authorization", format!("Bearer {}", reader.0))
        .header("x-acting-for", reader.1.as_str())
        .send()
        .await;
    resp.assert_status_is_ok();
    let theirs: Value = serde_json::from_str(&crate::text(resp).await).unwrap();
    assert!(
        !theirs["entry"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["resource"]["resourceType"] == "Appointment")
    );
}
