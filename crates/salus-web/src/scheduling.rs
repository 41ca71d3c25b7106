//! Appointments in the pages: the patient's side finds the next open time, books it with a
//! reason, sees the confirmation, downloads the calendar file, moves or cancels it before the
//! cut-off and asks to be told of an earlier time; the front desk sees a day or week of the
//! schedule, blocks times, books, moves and cancels for a patient, and keeps the set-up. The
//! domain's `SchedulingService` decides, audits and lets the database decide who gets a time.

use crate::account::with_status;
use crate::form::Problems;
use crate::session::{Acting, CheckedForm, NoFields, Refill, StaffMember, see_other};
use crate::{WebState, error_page, render};
use askama::Template;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use poem::http::StatusCode;
use poem::web::{CsrfToken, Data, Path, Query};
use poem::{IntoResponse, Response, handler};
use salus_domain::access::Actor;
use salus_domain::chrono_tz::Tz;
use salus_domain::scheduling::{
    AppointmentState, AppointmentView, NewLocation, NewProvider, NewTemplate, NewVisitType,
    OnlineBooking, SchedulingError, Setup, Slot, SlotQuery, SlotState, VisitMode, weekday_code,
};
use salus_domain::{AppointmentId, LocationId, PatientId, ProviderId, SlotId, VisitTypeId, when};
use serde::Deserialize;
use std::sync::Arc;

/// Where the front desk goes after a change: the schedule of the visit's day (in its
/// location's zone), with a notice of what was `done`.
fn after_change(v: &AppointmentView, done: &str) -> Response {
    let day = v
        .appointment
        .time
        .start
        .with_timezone(&v.location.time_zone)
        .date_naive();
    see_other(&format!("/staff/schedule?date={day}&done={done}"))
}

/// What a refusal answers when it is not about a field.
fn failed(e: SchedulingError) -> Response {
    match e {
        SchedulingError::NotFound => error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such appointment or time, or it is not yours to see.",
        ),
        SchedulingError::Forbidden => error_page(
            StatusCode::FORBIDDEN,
            "Not available",
            "This page is not for your role.",
        ),
        SchedulingError::Repo(r) => crate::unavailable("scheduling failed", &r),
        SchedulingError::InvalidReason | SchedulingError::Input { .. } => {
            error_page(StatusCode::BAD_REQUEST, "Not done", &e.to_string())
        }
        SchedulingError::StaffOnly => {
            error_page(StatusCode::FORBIDDEN, "Call the clinic", &e.to_string())
        }
        other => error_page(StatusCode::CONFLICT, "Not done", &other.to_string()),
    }
}

/// "Monday 7 December 2026".
fn long_day(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%A %-d %B %Y").to_string()
}

/// "09:20 CET".
fn clock(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%H:%M %Z").to_string()
}

/// An appointment as the pages show it.
pub(crate) struct AppointmentRow {
    pub(crate) id: String,
    pub(crate) day: String,
    pub(crate) time: String,
    pub(crate) minutes: u16,
    pub(crate) kind: String,
    pub(crate) provider: String,
    pub(crate) place: String,
    pub(crate) video_url: Option<String>,
    pub(crate) bring: Option<String>,
    pub(crate) reason: String,
    pub(crate) booked: bool,
    pub(crate) upcoming: bool,
    pub(crate) changeable: bool,
    pub(crate) cutoff_hours: u32,
    pub(crate) waiting: bool,
    /// For a cancelled one: when, and the reason staff gave.
    pub(crate) cancelled: Option<String>,
    pub(crate) cancel_reason: Option<String>,
}

pub(crate) fn appointment_row(v: &AppointmentView) -> AppointmentRow {
    let a = &v.appointment;
    let tz = v.location.time_zone;
    let (booked, cancelled, cancel_reason) = match &a.state {
        AppointmentState::Booked => (true, None, None),
        AppointmentState::Cancelled { at, reason, .. } => {
            (false, Some(when::moment(*at, tz)), reason.clone())
        }
    };
    AppointmentRow {
        id: a.id.to_string(),
        day: long_day(a.time.start, tz),
        time: clock(a.time.start, tz),
        minutes: v.visit_type.minutes,
        kind: v.visit_type.name.clone(),
        provider: v.provider.name.clone(),
        place: v.place(),
        video_url: v
            .provider
            .video_url
            .clone()
            .filter(|_| v.visit_type.mode == VisitMode::Video),
        bring: v.visit_type.bring.clone(),
        reason: a.reason.clone(),
        booked,
        upcoming: v.upcoming,
        changeable: v.changeable,
        cutoff_hours: v.cutoff_hours,
        waiting: v.waiting,
        cancelled,
        cancel_reason,
    }
}

/// The clinic's phone number, for "call the clinic".
async fn clinic_phone(state: &WebState, organization: salus_domain::OrganizationId) -> String {
    state
        .directory
        .list()
        .await
        .ok()
        .and_then(|all| all.into_iter().find(|o| o.id == organization))
        .and_then(|o| o.phone)
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default()
}

/// A patient's next three visits and their last three, for the home page.
pub(crate) async fn home_visits(
    state: &WebState,
    actor: &Actor,
    rid: Option<&str>,
) -> Result<(Vec<AppointmentRow>, Vec<AppointmentRow>), Response> {
    let all = state
        .scheduling
        .appointments(actor, None, rid)
        .await
        .map_err(failed)?;
    let now = state.scheduling.now();
    let upcoming = all
        .iter()
        .filter(|v| v.upcoming)
        .take(3)
        .map(appointment_row);
    let past = all
        .iter()
        .rev()
        .filter(|v| {
            v.appointment.state == AppointmentState::Booked && v.appointment.time.end <= now
        })
        .take(3)
        .map(appointment_row);
    Ok((upcoming.collect(), past.collect()))
}

#[derive(Template)]
#[template(path = "appointments.html")]
struct ListPage {
    upcoming: Vec<AppointmentRow>,
    past: Vec<AppointmentRow>,
}

/// The patient's appointments: upcoming first, then past and cancelled ones.
#[handler]
pub(crate) async fn list(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    acting: Acting,
) -> Response {
    let all = match state
        .scheduling
        .appointments(&acting.actor, None, rid.get())
        .await
    {
        Ok(a) => a,
        Err(e) => return failed(e),
    };
    let (upcoming, mut past): (Vec<_>, Vec<_>) = all.iter().partition(|v| v.upcoming);
    past.reverse();
    render(&ListPage {
        upcoming: upcoming.into_iter().map(appointment_row).collect(),
        past: past.into_iter().map(appointment_row).collect(),
    })
}

/// One open time as the pages list it.
struct SlotRow {
    id: String,
    time: String,
    provider: String,
    location: String,
}

/// The open times of one day.
struct DayGroup {
    day: String,
    slots: Vec<SlotRow>,
}

fn by_day(slots: &[Slot], setup: &Setup) -> Vec<DayGroup> {
    let mut days: Vec<DayGroup> = Vec::new();
    for s in slots {
        let location = setup.location(s.location);
        let tz = location.map_or(salus_domain::chrono_tz::UTC, |l| l.time_zone);
        let day = long_day(s.time.start, tz);
        let row = SlotRow {
            id: s.id.to_string(),
            time: clock(s.time.start, tz),
            provider: setup
                .provider(s.provider)
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            location: location.map(|l| l.name.clone()).unwrap_or_default(),
        };
        match days.last_mut() {
            Some(d) if d.day == day => d.slots.push(row),
            _ => days.push(DayGroup {
                day,
                slots: vec![row],
            }),
        }
    }
    days
}

#[derive(Template)]
#[template(path = "appointment_find.html")]
struct FindPage<'a> {
    csrf: &'a str,
    /// Where the search form goes (the patient's, or the front desk's).
    action: String,
    kinds: Vec<(String, String, bool)>,
    providers: Vec<(String, String, bool)>,
    locations: Vec<(String, String, bool)>,
    from: String,
    searched: bool,
    days: Vec<DayGroup>,
    /// Moving an appointment: its id (times are chosen with a form that moves it).
    moving: Option<String>,
    /// Booking by the front desk: the chart's id, carried to the booking form.
    patient: Option<String>,
    /// The first time after which to look for more.
    later: Option<String>,
    problems: Problems,
}

#[derive(Deserialize, Default)]
pub(crate) struct FindQuery {
    #[serde(default)]
    visit_type: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    location: String,
    /// `YYYY-MM-DD`, or a moment (RFC 3339) to continue after.
    #[serde(default)]
    from: String,
    /// Staff: whose visit it is.
    #[serde(default)]
    patient: String,
}

fn options<T>(
    items: &[T],
    chosen: &str,
    id: impl Fn(&T) -> String,
    label: impl Fn(&T) -> String,
) -> Vec<(String, String, bool)> {
    items
        .iter()
        .map(|i| {
            let v = id(i);
            let selected = v == chosen;
            (v, label(i), selected)
        })
        .collect()
}

/// The search for open times: the form, and when a visit type is chosen, the next open
/// times from the date given (or now), 20 at most, by day.
async fn find(
    state: &WebState,
    csrf: &str,
    actor: &Actor,
    q: FindQuery,
    moving: Option<AppointmentView>,
    rid: Option<&str>,
) -> Response {
    let patient = match &moving {
        Some(v) => Some(v.appointment.patient),
        None => PatientId::parse(&q.patient).ok(),
    };
    let setup = match state.scheduling.bookable(actor, patient, rid).await {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let chosen_kind = moving
        .as_ref()
        .map_or(q.visit_type.clone(), |v| v.visit_type.id.to_string());
    let mut problems = Problems::default();
    let from_text = q.from.trim();
    let from = if from_text.is_empty() {
        Some(DateTime::<Utc>::MIN_UTC)
    } else {
        DateTime::parse_from_rfc3339(from_text)
            .map(|t| t.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                NaiveDate::parse_from_str(from_text, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|d| d.and_utc())
            })
    };
    if from.is_none() {
        problems = Problems::one("from", "Give the first day as YYYY-MM-DD.");
    }
    let kind = VisitTypeId::parse(&chosen_kind)
        .ok()
        .filter(|k| setup.visit_type(*k).is_some());
    let mut slots = Vec::new();
    if let (Some(kind), Some(from)) = (kind, from) {
        let query = SlotQuery {
            visit_type: kind,
            provider: ProviderId::parse(&q.provider).ok(),
            location: LocationId::parse(&q.location).ok(),
            from,
            until: None,
            limit: 20,
        };
        match state.scheduling.search(actor, patient, query, rid).await {
            Ok((s, _)) => slots = s,
            Err(e) => return failed(e),
        }
    } else if !q.visit_type.is_empty() {
        problems = Problems::one("visit_type", "Choose a kind of visit.");
    }
    let later = (slots.len() == 20)
        .then(|| slots.last().map(|s| s.time.start + Duration::seconds(1)))
        .flatten()
        .map(|t| t.to_rfc3339());
    let staff = matches!(actor, Actor::Staff { .. });
    let page = FindPage {
        csrf,
        action: if staff {
            "/staff/schedule/find".to_owned()
        } else {
            "/appointments/new".to_owned()
        },
        kinds: options(
            &setup.visit_types,
            &chosen_kind,
            |k| k.id.to_string(),
            |k| {
                let how = match k.mode {
                    VisitMode::InPerson => "in person",
                    VisitMode::Video => "video",
                };
                format!("{} ({} minutes, {how})", k.name, k.minutes)
            },
        ),
        providers: options(
            &setup.providers,
            &q.provider,
            |p| p.id.to_string(),
            |p| p.name.clone(),
        ),
        locations: options(
            &setup.locations,
            &q.location,
            |l| l.id.to_string(),
            |l| format!("{}, {}", l.name, l.address),
        ),
        from: if from_text.contains('T') {
            String::new()
        } else {
            from_text.to_owned()
        },
        searched: kind.is_some() && from.is_some(),
        days: by_day(&slots, &setup),
        moving: moving.map(|v| v.appointment.id.to_string()),
        patient: patient.filter(|_| staff).map(|p| p.to_string()),
        later,
        problems,
    };
    if page.problems.is_empty() {
        render(&page)
    } else {
        with_status(render(&page), StatusCode::BAD_REQUEST)
    }
}

/// Finding a time to book.
#[handler]
pub(crate) async fn find_new(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    acting: Acting,
    Query(q): Query<FindQuery>,
) -> Response {
    find(&state, &csrf.0, &acting.actor, q, None, rid.get()).await
}

/// The front desk finding a time for a patient (by the chart's id, from the booking form).
#[handler]
pub(crate) async fn staff_find(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(acting): StaffMember,
    Query(q): Query<FindQuery>,
) -> Response {
    find(&state, &csrf.0, &acting.actor, q, None, rid.get()).await
}

/// The appointment a page's address names, for the actor (a malformed id is not found).
async fn appointment_of(
    state: &WebState,
    actor: &Actor,
    id: &str,
    rid: Option<&str>,
) -> Result<AppointmentView, SchedulingError> {
    let id = AppointmentId::parse(id).map_err(|_| SchedulingError::NotFound)?;
    state.scheduling.appointment(actor, id, rid).await
}

/// Finding a new time for a booked appointment (its visit type).
#[handler]
pub(crate) async fn find_move(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    acting: Acting,
    Path(id): Path<String>,
    Query(q): Query<FindQuery>,
) -> Response {
    let view = match appointment_of(&state, &acting.actor, &id, rid.get()).await {
        Ok(v) => v,
        Err(e) => return failed(e),
    };
    let staff = matches!(acting.actor, Actor::Staff { .. });
    if view.appointment.state != AppointmentState::Booked || !(view.changeable || staff) {
        return detail_page(&state, &csrf.0, &acting.actor, view, None).await;
    }
    find(&state, &csrf.0, &acting.actor, q, Some(view), rid.get()).await
}

#[derive(Template)]
#[template(path = "appointment_book.html")]
struct BookPage<'a> {
    csrf: &'a str,
    slot: String,
    day: String,
    time: String,
    kind: String,
    minutes: u16,
    provider: String,
    place: String,
    bring: Option<String>,
    staff: bool,
    form: BookForm,
    problems: Problems,
}

#[derive(Deserialize, Default)]
pub(crate) struct BookForm {
    #[serde(default)]
    reason: String,
    /// Staff: the patient's medical record number.
    #[serde(default)]
    mrn: String,
    /// Staff: the chart's id, when they came from a patient.
    #[serde(default)]
    patient: String,
}

impl Refill for BookForm {}

/// The booking form for an open time, or why it cannot be booked.
async fn book_page(
    state: &WebState,
    csrf: &str,
    actor: &Actor,
    slot: SlotId,
    form: BookForm,
    problems: Problems,
    rid: Option<&str>,
) -> Response {
    let patient = PatientId::parse(&form.patient).ok();
    let staff = matches!(actor, Actor::Staff { .. });
    let setup = match state
        .scheduling
        .bookable(actor, patient.filter(|_| !staff), rid)
        .await
    {
        Ok(s) => s,
        Err(SchedulingError::NotFound) if staff => match state.scheduling.setup(actor).await {
            Ok(s) => s,
            Err(e) => return failed(e),
        },
        Err(e) => return failed(e),
    };
    let found = match state.scheduling.open_time(actor, slot).await {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let (Some(kind), Some(location), Some(provider)) = (
        setup.visit_type(found.visit_type),
        setup.location(found.location),
        setup.provider(found.provider),
    ) else {
        return failed(SchedulingError::NotFound);
    };
    let tz = location.time_zone;
    let place = match (kind.mode, &provider.video_url) {
        (VisitMode::Video, Some(_)) => "Video visit (the link is on the confirmation)".to_owned(),
        _ => format!("{}, {}", location.name, location.address),
    };
    let page = BookPage {
        csrf,
        slot: slot.to_string(),
        day: long_day(found.time.start, tz),
        time: clock(found.time.start, tz),
        kind: kind.name.clone(),
        minutes: kind.minutes,
        provider: provider.name.clone(),
        place,
        bring: kind.bring.clone(),
        staff,
        form,
        problems,
    };
    if page.problems.is_empty() {
        render(&page)
    } else {
        with_status(render(&page), StatusCode::BAD_REQUEST)
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct PatientQuery {
    #[serde(default)]
    patient: String,
}

/// The booking form for an open time.
#[handler]
pub(crate) async fn book_form(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    acting: Acting,
    Path(slot): Path<String>,
    Query(q): Query<PatientQuery>,
) -> Response {
    let Ok(slot) = SlotId::parse(&slot) else {
        return failed(SchedulingError::NotFound);
    };
    let form = BookForm {
        patient: q.patient,
        ..BookForm::default()
    };
    book_page(
        &state,
        &csrf.0,
        &acting.actor,
        slot,
        form,
        Problems::default(),
        rid.get(),
    )
    .await
}

/// Books the time: the confirmation, or the form with what was wrong.
#[handler]
pub(crate) async fn book(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    acting: Acting,
    Path(slot): Path<String>,
    CheckedForm(f): CheckedForm<BookForm>,
) -> Response {
    let Ok(slot) = SlotId::parse(&slot) else {
        return failed(SchedulingError::NotFound);
    };
    let staff = matches!(acting.actor, Actor::Staff { .. });
    let patient = if staff {
        let by_id = PatientId::parse(&f.patient).ok();
        match by_id {
            Some(p) => Some(p),
            None => match state
                .scheduling
                .chart_by_mrn(&acting.actor, &f.mrn, rid.get())
                .await
            {
                Ok((p, _)) => Some(p),
                Err(SchedulingError::NotFound) => {
                    let problems =
                        Problems::one("mrn", "No patient of this clinic has that number.");
                    return book_page(&state, &csrf.0, &acting.actor, slot, f, problems, rid.get())
                        .await;
                }
                Err(e) => return failed(e),
            },
        }
    } else {
        None
    };
    match state
        .scheduling
        .book(&acting.actor, patient, slot, &f.reason, rid.get())
        .await
    {
        Ok(v) if staff => after_change(&v, "booked"),
        Ok(v) => see_other(&format!("/appointments/{}?done=booked", v.appointment.id)),
        Err(e @ SchedulingError::InvalidReason) => {
            let problems = Problems::one("reason", e.to_string());
            book_page(&state, &csrf.0, &acting.actor, slot, f, problems, rid.get()).await
        }
        Err(e) => failed(e),
    }
}

#[derive(Template)]
#[template(path = "appointment.html")]
struct DetailPage<'a> {
    csrf: &'a str,
    a: AppointmentRow,
    phone: String,
    staff: bool,
    notice: Option<&'static str>,
}

async fn detail_page(
    state: &WebState,
    csrf: &str,
    actor: &Actor,
    view: AppointmentView,
    notice: Option<&'static str>,
) -> Response {
    let phone = clinic_phone(state, view.appointment.organization).await;
    render(&DetailPage {
        csrf,
        a: appointment_row(&view),
        phone,
        staff: matches!(actor, Actor::Staff { .. }),
        notice,
    })
}

#[derive(Deserialize)]
pub(crate) struct DoneQuery {
    done: Option<String>,
}

/// One appointment: the confirmation after booking or moving, and what can be done with it.
#[handler]
pub(crate) async fn show(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    acting: Acting,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let view = match appointment_of(&state, &acting.actor, &id, rid.get()).await {
        Ok(v) => v,
        Err(e) => return failed(e),
    };
    let notice = match q.done.as_deref() {
        Some("booked") => {
            Some("Booked. Here are the details; we also email you a reminder the day before.")
        }
        Some("moved") => Some("Moved to the new time."),
        Some("cancelled") => Some("Cancelled. The time is free for someone else."),
        Some("waiting") => {
            Some("We will email you if an earlier time opens. It is yours if you move to it first.")
        }
        Some("not_waiting") => Some("You will not be told of earlier times."),
        _ => None,
    };
    detail_page(&state, &csrf.0, &acting.actor, view, notice).await
}

/// The calendar file of a booked appointment.
#[handler]
pub(crate) async fn calendar(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    acting: Acting,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = AppointmentId::parse(&id) else {
        return failed(SchedulingError::NotFound);
    };
    match state
        .scheduling
        .calendar(&acting.actor, id, rid.get())
        .await
    {
        Ok(ics) => ics
            .with_content_type("text/calendar; charset=utf-8")
            .with_header(
                poem::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"appointment.ics\"",
            )
            .with_header("x-content-type-options", "nosniff")
            .into_response(),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct CancelForm {
    #[serde(default)]
    reason: String,
}

impl Refill for CancelForm {}

/// Cancels an appointment (staff: with the reason the patient reads).
#[handler]
pub(crate) async fn cancel(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    acting: Acting,
    Path(id): Path<String>,
    CheckedForm(f): CheckedForm<CancelForm>,
) -> Response {
    let Ok(id) = AppointmentId::parse(&id) else {
        return failed(SchedulingError::NotFound);
    };
    let staff = matches!(acting.actor, Actor::Staff { .. });
    let reason = Some(f.reason.as_str()).filter(|_| staff);
    match state
        .scheduling
        .cancel(&acting.actor, id, reason, rid.get())
        .await
    {
        Ok(v) if staff => after_change(&v, "cancelled"),
        Ok(_) => see_other(&format!("/appointments/{id}?done=cancelled")),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct MoveForm {
    #[serde(default)]
    slot: String,
}

impl Refill for MoveForm {}

/// Moves an appointment to the time chosen.
#[handler]
pub(crate) async fn reschedule(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    acting: Acting,
    Path(id): Path<String>,
    CheckedForm(f): CheckedForm<MoveForm>,
) -> Response {
    let (Ok(id), Ok(slot)) = (AppointmentId::parse(&id), SlotId::parse(&f.slot)) else {
        return failed(SchedulingError::NotFound);
    };
    match state
        .scheduling
        .reschedule(&acting.actor, id, slot, rid.get())
        .await
    {
        Ok(v) if matches!(acting.actor, Actor::Staff { .. }) => after_change(&v, "moved"),
        Ok(_) => see_other(&format!("/appointments/{id}?done=moved")),
        Err(e) => failed(e),
    }
}

/// Asks to be told of an earlier time (`join`), or stops.
async fn waitlist(
    state: &WebState,
    acting: &Acting,
    id: &str,
    join: bool,
    rid: Option<&str>,
) -> Response {
    let Ok(id) = AppointmentId::parse(id) else {
        return failed(SchedulingError::NotFound);
    };
    let done = if join {
        state.scheduling.join_waitlist(&acting.actor, id, rid).await
    } else {
        state
            .scheduling
            .leave_waitlist(&acting.actor, id, rid)
            .await
    };
    match done {
        Ok(_) if join => see_other(&format!("/appointments/{id}?done=waiting")),
        Ok(_) => see_other(&format!("/appointments/{id}?done=not_waiting")),
        Err(e) => failed(e),
    }
}

#[handler]
pub(crate) async fn join_waitlist(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    acting: Acting,
    Path(id): Path<String>,
    _form: CheckedForm<NoFields>,
) -> Response {
    waitlist(&state, &acting, &id, true, rid.get()).await
}

#[handler]
pub(crate) async fn leave_waitlist(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    acting: Acting,
    Path(id): Path<String>,
    _form: CheckedForm<NoFields>,
) -> Response {
    waitlist(&state, &acting, &id, false, rid.get()).await
}

/// One row of the front desk's view.
struct ScheduleRow {
    slot: String,
    day: String,
    time: String,
    provider: String,
    location: String,
    kind: String,
    /// `open`, `blocked` or `booked`.
    state: &'static str,
    appointment: Option<String>,
    patient: Option<String>,
    reason: Option<String>,
    past: bool,
}

#[derive(Template)]
#[template(path = "staff_schedule.html")]
struct SchedulePage<'a> {
    csrf: &'a str,
    date: String,
    days: u32,
    previous: String,
    next: String,
    providers: Vec<(String, String, bool)>,
    locations: Vec<(String, String, bool)>,
    provider: String,
    location: String,
    /// The rows by day.
    days_shown: Vec<(String, Vec<ScheduleRow>)>,
    counts: (usize, usize, usize),
    notice: Option<&'static str>,
}

#[derive(Deserialize, Default)]
pub(crate) struct ScheduleQuery {
    #[serde(default)]
    date: String,
    days: Option<u32>,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    location: String,
    done: Option<String>,
}

/// The front desk's day or week of the schedule: every time, open, blocked or booked, with
/// the patient of each booking.
#[handler]
pub(crate) async fn schedule(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(acting): StaffMember,
    Query(q): Query<ScheduleQuery>,
) -> Response {
    let setup = match state.scheduling.setup(&acting.actor).await {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let provider = ProviderId::parse(&q.provider).ok();
    let location = LocationId::parse(&q.location).ok();
    let tz = location
        .and_then(|l| setup.location(l))
        .or(setup.locations.first())
        .map_or(salus_domain::chrono_tz::UTC, |l| l.time_zone);
    let now = state.scheduling.now();
    let date = NaiveDate::parse_from_str(q.date.trim(), "%Y-%m-%d")
        .unwrap_or_else(|_| now.with_timezone(&tz).date_naive());
    let days = if q.days == Some(7) { 7 } else { 1 };
    let entries = match state
        .scheduling
        .day_view(&acting.actor, date, days, provider, location, rid.get())
        .await
    {
        Ok(e) => e,
        Err(e) => return failed(e),
    };
    let rows: Vec<ScheduleRow> = entries
        .iter()
        .map(|e| {
            let place = setup.location(e.slot.location);
            let tz = place.map_or(tz, |l| l.time_zone);
            ScheduleRow {
                slot: e.slot.id.to_string(),
                day: long_day(e.slot.time.start, tz),
                time: clock(e.slot.time.start, tz),
                provider: setup
                    .provider(e.slot.provider)
                    .map(|p| p.name.clone())
                    .unwrap_or_default(),
                location: place.map(|l| l.name.clone()).unwrap_or_default(),
                kind: setup
                    .visit_type(e.slot.visit_type)
                    .map(|k| k.name.clone())
                    .unwrap_or_default(),
                state: match e.slot.state {
                    SlotState::Open => "open",
                    SlotState::Blocked => "blocked",
                    SlotState::Booked(_) => "booked",
                },
                appointment: e.appointment.as_ref().map(|a| a.id.to_string()),
                patient: e.patient_name.clone(),
                reason: e.appointment.as_ref().map(|a| a.reason.clone()),
                past: e.slot.time.start <= now,
            }
        })
        .collect();
    let count = |s: &str| rows.iter().filter(|r| r.state == s).count();
    let counts = (count("open"), count("booked"), count("blocked"));
    let step = Duration::days(i64::from(days));
    let mut days_shown: Vec<(String, Vec<ScheduleRow>)> = Vec::new();
    for row in rows {
        match days_shown.last_mut() {
            Some((day, rows)) if *day == row.day => rows.push(row),
            _ => days_shown.push((row.day.clone(), vec![row])),
        }
    }
    render(&SchedulePage {
        csrf: &csrf.0,
        date: date.to_string(),
        days,
        previous: (date - step).to_string(),
        next: (date + step).to_string(),
        providers: options(
            &setup.providers,
            &q.provider,
            |p| p.id.to_string(),
            |p| p.name.clone(),
        ),
        locations: options(
            &setup.locations,
            &q.location,
            |l| l.id.to_string(),
            |l| l.name.clone(),
        ),
        provider: q.provider.clone(),
        location: q.location.clone(),
        days_shown,
        counts,
        notice: match q.done.as_deref() {
            Some("booked") => Some("Booked."),
            Some("moved") => Some("Moved."),
            Some("cancelled") => Some("Cancelled. The patient sees your reason."),
            Some("blocked") => Some("The time is blocked."),
            Some("opened") => Some("The time is open again."),
            _ => None,
        },
    })
}

#[derive(Deserialize, Default)]
pub(crate) struct BackForm {
    /// The day of the view to go back to.
    #[serde(default)]
    date: String,
}

impl Refill for BackForm {}

/// Blocks an open time, or opens a blocked one.
async fn set_blocked(
    state: &WebState,
    acting: &Acting,
    id: &str,
    date: &str,
    blocked: bool,
) -> Response {
    let Ok(id) = SlotId::parse(id) else {
        return failed(SchedulingError::NotFound);
    };
    let date = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
        .map(|d| d.to_string())
        .unwrap_or_default();
    match state
        .scheduling
        .block_slot(&acting.actor, id, blocked)
        .await
    {
        Ok(()) => see_other(&format!(
            "/staff/schedule?date={date}&done={}",
            if blocked { "blocked" } else { "opened" }
        )),
        Err(e) => failed(e),
    }
}

#[handler]
pub(crate) async fn block(
    state: Data<&Arc<WebState>>,
    StaffMember(acting): StaffMember,
    Path(id): Path<String>,
    CheckedForm(f): CheckedForm<BackForm>,
) -> Response {
    set_blocked(&state, &acting, &id, &f.date, true).await
}

#[handler]
pub(crate) async fn unblock(
    state: Data<&Arc<WebState>>,
    StaffMember(acting): StaffMember,
    Path(id): Path<String>,
    CheckedForm(f): CheckedForm<BackForm>,
) -> Response {
    set_blocked(&state, &acting, &id, &f.date, false).await
}

/// A weekday as the pages name it.
fn weekday_label(day: chrono::Weekday) -> &'static str {
    match day {
        chrono::Weekday::Mon => "Monday",
        chrono::Weekday::Tue => "Tuesday",
        chrono::Weekday::Wed => "Wednesday",
        chrono::Weekday::Thu => "Thursday",
        chrono::Weekday::Fri => "Friday",
        chrono::Weekday::Sat => "Saturday",
        chrono::Weekday::Sun => "Sunday",
    }
}

struct TemplateRow {
    weekday: &'static str,
    hours: String,
    provider: String,
    location: String,
    kind: String,
    valid: String,
}

#[derive(Template)]
#[template(path = "staff_schedule_setup.html")]
struct SetupPage<'a> {
    csrf: &'a str,
    setup: &'a Setup,
    templates: Vec<TemplateRow>,
    form: SetupForm,
    /// Which form the problems are of.
    part: &'a str,
    problems: Problems,
    notice: Option<String>,
    horizon_days: u32,
    /// (value, label) of each day of the week.
    weekdays: Vec<(&'static str, &'static str)>,
}

impl SetupPage<'_> {
    /// What was typed in `field` of the form `part`, when that form is shown again.
    fn v(&self, part: &str, field: &str) -> &str {
        if self.part != part {
            return "";
        }
        let f = &self.form;
        match field {
            "name" => &f.name,
            "address" => &f.address,
            "time_zone" => &f.time_zone,
            "video_url" => &f.video_url,
            "minutes" => &f.minutes,
            "max_per_patient" => &f.max_per_patient,
            "bring" => &f.bring,
            "start" => &f.start,
            "end" => &f.end,
            "valid_from" => &f.valid_from,
            "valid_until" => &f.valid_until,
            "date" => &f.date,
            "reason" => &f.reason,
            "hours" => &f.hours,
            _ => "",
        }
    }
    fn mode(&self, k: &salus_domain::scheduling::VisitType) -> &'static str {
        match k.mode {
            VisitMode::InPerson => "In person",
            VisitMode::Video => "Video",
        }
    }
    fn online(&self, k: &salus_domain::scheduling::VisitType) -> &'static str {
        match k.online {
            OnlineBooking::Everyone => "Everyone",
            OnlineBooking::ExistingPatients => "Existing patients",
            OnlineBooking::StaffOnly => "Staff only",
        }
    }
}

/// Every field of the set-up's forms (each form posts its own).
#[derive(Deserialize, Default)]
pub(crate) struct SetupForm {
    #[serde(default)]
    part: String,
    #[serde(default)]
    practitioner: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    time_zone: String,
    #[serde(default)]
    video_url: String,
    #[serde(default)]
    minutes: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    online: String,
    #[serde(default)]
    max_per_patient: String,
    #[serde(default)]
    bring: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    visit_type: String,
    #[serde(default)]
    weekday: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    end: String,
    #[serde(default)]
    valid_from: String,
    #[serde(default)]
    valid_until: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    hours: String,
}

impl Refill for SetupForm {}

async fn setup_page(
    state: &WebState,
    csrf: &str,
    actor: &Actor,
    form: SetupForm,
    problems: Problems,
    notice: Option<String>,
) -> Response {
    let setup = match state.scheduling.setup(actor).await {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let templates = setup
        .templates
        .iter()
        .map(|t| TemplateRow {
            weekday: weekday_label(t.weekly.weekday),
            hours: format!(
                "{}–{}",
                t.weekly.start.format("%H:%M"),
                t.weekly.end.format("%H:%M")
            ),
            provider: setup
                .provider(t.provider)
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            location: setup
                .location(t.location)
                .map(|l| l.name.clone())
                .unwrap_or_default(),
            kind: setup
                .visit_type(t.visit_type)
                .map(|k| k.name.clone())
                .unwrap_or_default(),
            valid: match t.weekly.valid_until {
                Some(u) => format!("{} to {}", when::day(t.weekly.valid_from), when::day(u)),
                None => format!("from {}", when::day(t.weekly.valid_from)),
            },
        })
        .collect();
    let part = form.part.clone();
    let bad = !problems.is_empty();
    let page = render(&SetupPage {
        csrf,
        setup: &setup,
        templates,
        form,
        part: &part,
        problems,
        notice,
        horizon_days: state.scheduling.horizon_days(),
        weekdays: [
            chrono::Weekday::Mon,
            chrono::Weekday::Tue,
            chrono::Weekday::Wed,
            chrono::Weekday::Thu,
            chrono::Weekday::Fri,
            chrono::Weekday::Sat,
            chrono::Weekday::Sun,
        ]
        .into_iter()
        .map(|d| (weekday_code(d), weekday_label(d)))
        .collect(),
    });
    if bad {
        with_status(page, StatusCode::BAD_REQUEST)
    } else {
        page
    }
}

/// The front desk's scheduling set-up.
#[handler]
pub(crate) async fn setup_form(
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(acting): StaffMember,
) -> Response {
    setup_page(
        &state,
        &csrf.0,
        &acting.actor,
        SetupForm::default(),
        Problems::default(),
        None,
    )
    .await
}

/// The field (its id on the page) a set-up refusal is about.
fn setup_field(part: &str, code: &str) -> &'static str {
    match (part, code) {
        ("location", "invalid_address") => "loc-address",
        ("location", "invalid_time_zone") => "loc-time_zone",
        ("location", _) => "loc-name",
        ("provider", "invalid_video_url") => "prov-video_url",
        ("provider", "invalid_practitioner") => "prov-practitioner",
        ("provider", _) => "prov-name",
        ("visit_type", "invalid_minutes") => "kind-minutes",
        ("visit_type", "invalid_mode") => "kind-mode",
        ("visit_type", "invalid_online") => "kind-online",
        ("visit_type", "invalid_max_per_patient") => "kind-max_per_patient",
        ("visit_type", "invalid_bring") => "kind-bring",
        ("visit_type", _) => "kind-name",
        ("template", "invalid_location") => "tpl-location",
        ("template", "invalid_visit_type") => "tpl-visit_type",
        ("template", "invalid_weekday") => "tpl-weekday",
        ("template", "invalid_start") => "tpl-start",
        ("template", "invalid_end") => "tpl-end",
        ("template", "invalid_valid_from") => "tpl-valid_from",
        ("template", "invalid_valid_until") => "tpl-valid_until",
        ("template", _) => "tpl-provider",
        ("day_off", "invalid_date") => "off-date",
        ("day_off", "invalid_reason") => "off-reason",
        ("day_off", _) => "off-provider",
        _ => "cut-hours",
    }
}

/// Saves one of the set-up's forms.
#[handler]
pub(crate) async fn save_setup(
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(acting): StaffMember,
    CheckedForm(f): CheckedForm<SetupForm>,
) -> Response {
    let s = &state.scheduling;
    let a = &acting.actor;
    let done: Result<String, SchedulingError> = match f.part.as_str() {
        "location" => s
            .add_location(
                a,
                NewLocation {
                    name: &f.name,
                    address: &f.address,
                    time_zone: &f.time_zone,
                },
            )
            .await
            .map(|l| format!("Added the location {}.", l.name)),
        "provider" => s
            .add_provider(
                a,
                NewProvider {
                    practitioner: &f.practitioner,
                    name: &f.name,
                    video_url: &f.video_url,
                },
            )
            .await
            .map(|p| format!("Added {}.", p.name)),
        "visit_type" => s
            .add_visit_type(
                a,
                NewVisitType {
                    name: &f.name,
                    minutes: &f.minutes,
                    mode: &f.mode,
                    online: &f.online,
                    max_per_patient: &f.max_per_patient,
                    bring: &f.bring,
                },
            )
            .await
            .map(|k| format!("Added the visit type {}.", k.name)),
        "template" => s
            .add_template(
                a,
                NewTemplate {
                    provider: &f.provider,
                    location: &f.location,
                    visit_type: &f.visit_type,
                    weekday: &f.weekday,
                    start: &f.start,
                    end: &f.end,
                    valid_from: &f.valid_from,
                    valid_until: &f.valid_until,
                },
            )
            .await
            .map(|_| "Published. Its times are open for booking now.".to_owned()),
        "day_off" => s
            .add_day_off(a, &f.provider, &f.date, &f.reason)
            .await
            .map(|n| {
                format!(
                    "Day off recorded; {n} open time{} taken away. Booked visits that day stay: move or cancel them from the schedule.",
                    if n == 1 { "" } else { "s" }
                )
            }),
        "cutoff" => s
            .set_cancel_cutoff(a, &f.hours)
            .await
            .map(|h| format!("Patients can cancel or move online until {h} hours before a visit.")),
        _ => Err(SchedulingError::NotFound),
    };
    match done {
        Ok(notice) => {
            setup_page(
                &state,
                &csrf.0,
                a,
                SetupForm::default(),
                Problems::default(),
                Some(notice),
            )
            .await
        }
        Err(e @ SchedulingError::Input { .. }) => {
            let problems = Problems::one(setup_field(&f.part, e.code()), e.to_string());
            setup_page(&state, &csrf.0, a, f, problems, None).await
        }
        Err(e) => failed(e),
    }
}
