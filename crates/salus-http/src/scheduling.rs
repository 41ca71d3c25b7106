//! Appointments: the patient's side (or the front desk for a patient) finds open times,
//! books, moves and cancels visits, downloads a calendar file and waits for an earlier time;
//! the front desk and administrators set up locations, providers, visit types and weekly
//! availability and see a day or week of the schedule.

use crate::consent::body;
use crate::error::{ApiError, ErrorBody};
use crate::records::request_id;
use crate::session::SessionToken;
use chrono::{DateTime, NaiveDate, Utc};
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use salus_domain::scheduling::{
    AppointmentState, AppointmentView, DayEntry, Location, NewLocation, NewProvider, NewTemplate,
    NewVisitType, OnlineBooking, Provider, SchedulingError, Setup, Slot, SlotQuery, SlotState,
    Template, VisitMode, VisitType, weekday_code,
};
use salus_domain::{AppointmentId, LocationId, PatientId, ProviderId, SlotId, VisitTypeId};

#[derive(Tags)]
enum ApiTags {
    /// Appointments: open times, booking, moving and cancelling, the waitlist, and the
    /// front desk's schedule.
    Scheduling,
}

#[derive(ApiResponse)]
pub(crate) enum Answer<T: poem_openapi::types::ToJSON + Send + Sync> {
    #[oai(status = 200)]
    Ok(Json<T>),
    /// Booked.
    #[oai(status = 201)]
    Created(Json<T>),
    #[oai(status = 204)]
    Done,
    /// `invalid_reason`, `invalid_cancel_reason`, `other_visit_type`, `invalid_query`, and
    /// the set-up's field codes (`invalid_name`, `invalid_time_zone`, `invalid_minutes`, …).
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// `forbidden`: not for this role; `staff_only`: this visit type is booked by the clinic.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `not_found`: no such appointment, time or chart, or not yours.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// `slot_taken`, `past_cutoff` (call the clinic), `not_booked`, `slot_in_past`,
    /// `too_many_appointments`, `appointment_overlaps`.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
}

pub(crate) fn refused<T: poem_openapi::types::ToJSON + Send + Sync>(
    e: SchedulingError,
) -> Result<Answer<T>, ApiError> {
    let b = body(e.code(), &e.to_string());
    Ok(match e {
        SchedulingError::NotFound => Answer::NotFound(b),
        SchedulingError::Forbidden | SchedulingError::StaffOnly => Answer::Forbidden(b),
        SchedulingError::InvalidReason | SchedulingError::Input { .. } => Answer::Invalid(b),
        SchedulingError::SlotTaken
        | SchedulingError::PastCutoff
        | SchedulingError::NotBooked
        | SchedulingError::Rule(_) => Answer::Conflict(b),
        SchedulingError::Repo(r) => return Err(r.into()),
    })
}

macro_rules! actor_or {
    ($token:expr) => {
        match $token.actor() {
            Ok(a) => a,
            Err(_) => return refused(SchedulingError::Forbidden),
        }
    };
}

/// An id from a path or body: a malformed one is "not found", like a missing one.
macro_rules! id_or {
    ($ty:ty, $text:expr) => {
        match <$ty>::parse($text) {
            Ok(id) => id,
            Err(_) => return refused(SchedulingError::NotFound),
        }
    };
}

/// An optional chart named by staff (`patient_id`); the patient's side names none.
fn chart(patient_id: Option<&str>) -> Result<Option<PatientId>, SchedulingError> {
    patient_id
        .map(|p| PatientId::parse(p).map_err(|_| SchedulingError::NotFound))
        .transpose()
}

fn bad_query(message: &'static str) -> SchedulingError {
    SchedulingError::Input {
        code: "invalid_query",
        message,
    }
}

/// A time given as RFC 3339 or as a date (its midnight, UTC).
fn instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc())
        })
}

#[derive(Object)]
pub struct LocationDto {
    pub id: String,
    pub name: String,
    pub address: String,
    /// IANA zone the location's times are shown in.
    pub time_zone: String,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ProviderDto {
    pub id: String,
    pub name: String,
    /// Staff only: their entry in the practitioner directory.
    pub practitioner_id: Option<String>,
    pub active: bool,
    /// Staff only: the provider's video room.
    pub video_url: Option<String>,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct VisitTypeDto {
    pub id: String,
    pub name: String,
    pub minutes: u16,
    /// `in_person` or `video`.
    pub mode: String,
    /// `everyone`, `existing_patients` or `staff_only`.
    pub online: String,
    pub max_per_patient: u8,
    pub bring: Option<String>,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TemplateDto {
    pub id: String,
    pub provider_id: String,
    pub location_id: String,
    pub visit_type_id: String,
    /// `monday` … `sunday`.
    pub weekday: String,
    /// Local time at the location, `HH:MM`.
    pub start: String,
    pub end: String,
    pub valid_from: NaiveDate,
    pub valid_until: Option<NaiveDate>,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SetupDto {
    pub locations: Vec<LocationDto>,
    pub providers: Vec<ProviderDto>,
    pub visit_types: Vec<VisitTypeDto>,
    /// Staff only.
    pub templates: Option<Vec<TemplateDto>>,
    /// Staff only: the practitioner directory a provider links to.
    pub directory: Option<Vec<DirectoryEntryDto>>,
    /// Hours before a visit when cancelling or moving it online ends.
    pub cancel_cutoff_hours: u32,
}

#[derive(Object)]
pub struct DirectoryEntryDto {
    pub practitioner_id: String,
    pub name: String,
}

#[derive(Object)]
pub struct SlotDto {
    pub id: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The start as the location's clock shows it, with its offset (RFC 3339).
    pub local_start: String,
    pub provider_id: String,
    pub location_id: String,
    pub visit_type_id: String,
    /// `open`, `blocked` or `booked`.
    pub state: String,
}

#[derive(Object)]
pub struct SlotList {
    /// Earliest first: the first is the next available.
    pub slots: Vec<SlotDto>,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AppointmentDto {
    pub id: String,
    pub patient_id: String,
    pub slot_id: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub local_start: String,
    pub time_zone: String,
    pub visit_type: VisitTypeDto,
    pub location: LocationDto,
    pub provider_name: String,
    /// Where to go: the location's name and address, or the video link.
    pub place: String,
    /// The video link, for a video visit.
    pub video_url: Option<String>,
    pub reason: String,
    pub booked_at: DateTime<Utc>,
    /// `booked` or `cancelled`.
    pub state: String,
    pub cancelled_at: Option<DateTime<Utc>>,
    /// The reason staff gave, when they cancelled.
    pub cancel_reason: Option<String>,
    /// Booked and not over.
    pub upcoming: bool,
    /// May still be cancelled or moved online (before the cut-off).
    pub changeable: bool,
    pub cancel_cutoff_hours: u32,
    /// Waiting to be told of an earlier time.
    pub waitlisted: bool,
    /// `/api/v1/appointments/{id}/calendar`, while booked.
    pub calendar_url: Option<String>,
}

#[derive(Object)]
pub struct AppointmentList {
    pub appointments: Vec<AppointmentDto>,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct DayEntryDto {
    pub slot: SlotDto,
    pub appointment_id: Option<String>,
    pub patient_id: Option<String>,
    pub patient_name: Option<String>,
    pub reason: Option<String>,
}

#[derive(Object)]
pub struct DayView {
    pub entries: Vec<DayEntryDto>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct BookInput {
    pub slot_id: String,
    /// Why you are coming, up to 500 characters.
    #[oai(default)]
    pub reason: String,
    /// Staff: whose visit it is.
    pub patient_id: Option<String>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct CancelInput {
    /// Staff: a reason the patient reads, up to 500 characters.
    pub reason: Option<String>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct RescheduleInput {
    /// An open time of the same visit type.
    pub slot_id: String,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct LocationInput {
    pub name: String,
    pub address: String,
    /// IANA zone name, e.g. `America/New_York`.
    pub time_zone: String,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ProviderInput {
    /// Their entry in the practitioner directory (`directory` of the set-up).
    pub practitioner_id: Option<String>,
    /// The name patients see; the directory's name when left empty and one is linked.
    #[oai(default)]
    pub name: String,
    /// The provider's video room (`https://…`), needed for video visits.
    #[oai(default)]
    pub video_url: String,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct VisitTypeInput {
    pub name: String,
    /// 5 to 240, in steps of 5.
    pub minutes: u32,
    /// `in_person` or `video`.
    pub mode: String,
    /// `everyone`, `existing_patients` or `staff_only`.
    pub online: String,
    /// Upcoming visits of this type one patient may hold: 1 to 10.
    pub max_per_patient: u32,
    /// What to bring, shown with the confirmation.
    #[oai(default)]
    pub bring: String,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct TemplateInput {
    pub provider_id: String,
    pub location_id: String,
    pub visit_type_id: String,
    /// `monday` … `sunday`.
    pub weekday: String,
    /// `HH:MM`, local time at the location.
    pub start: String,
    pub end: String,
    /// `YYYY-MM-DD`; today when left out.
    #[oai(default)]
    pub valid_from: String,
    /// `YYYY-MM-DD`; open-ended when left out.
    #[oai(default)]
    pub valid_until: String,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct DayOffInput {
    pub provider_id: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    #[oai(default)]
    pub reason: String,
}

#[derive(Object)]
pub struct DayOffDone {
    /// Open times of that day taken away (booked ones stay, to move or cancel).
    pub removed_slots: u64,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct CutoffInput {
    /// 0 to 168.
    pub hours: u32,
}

fn location_dto(l: &Location) -> LocationDto {
    LocationDto {
        id: l.id.to_string(),
        name: l.name.clone(),
        address: l.address.clone(),
        time_zone: l.time_zone.name().to_owned(),
    }
}

fn provider_dto(p: &Provider, staff: bool) -> ProviderDto {
    ProviderDto {
        id: p.id.to_string(),
        name: p.name.clone(),
        active: p.active,
        video_url: p.video_url.clone().filter(|_| staff),
        practitioner_id: p.practitioner.filter(|_| staff).map(|id| id.to_string()),
    }
}

fn mode_code(m: VisitMode) -> &'static str {
    match m {
        VisitMode::InPerson => "in_person",
        VisitMode::Video => "video",
    }
}

fn online_code(o: OnlineBooking) -> &'static str {
    match o {
        OnlineBooking::Everyone => "everyone",
        OnlineBooking::ExistingPatients => "existing_patients",
        OnlineBooking::StaffOnly => "staff_only",
    }
}

fn visit_type_dto(v: &VisitType) -> VisitTypeDto {
    VisitTypeDto {
        id: v.id.to_string(),
        name: v.name.clone(),
        minutes: v.minutes,
        mode: mode_code(v.mode).to_owned(),
        online: online_code(v.online).to_owned(),
        max_per_patient: v.max_per_patient,
        bring: v.bring.clone(),
    }
}

fn template_dto(t: &Template) -> TemplateDto {
    TemplateDto {
        id: t.id.to_string(),
        provider_id: t.provider.to_string(),
        location_id: t.location.to_string(),
        visit_type_id: t.visit_type.to_string(),
        weekday: weekday_code(t.weekly.weekday).to_owned(),
        start: t.weekly.start.format("%H:%M").to_string(),
        end: t.weekly.end.format("%H:%M").to_string(),
        valid_from: t.weekly.valid_from,
        valid_until: t.weekly.valid_until,
    }
}

fn setup_dto(s: &Setup, staff: bool) -> SetupDto {
    SetupDto {
        locations: s.locations.iter().map(location_dto).collect(),
        providers: s.providers.iter().map(|p| provider_dto(p, staff)).collect(),
        visit_types: s.visit_types.iter().map(visit_type_dto).collect(),
        templates: staff.then(|| s.templates.iter().map(template_dto).collect()),
        directory: staff.then(|| {
            s.directory
                .iter()
                .map(|(id, name)| DirectoryEntryDto {
                    practitioner_id: id.to_string(),
                    name: name.clone(),
                })
                .collect()
        }),
        cancel_cutoff_hours: s.cancel_cutoff_hours,
    }
}

fn slot_dto(s: &Slot, zone: salus_domain::chrono_tz::Tz) -> SlotDto {
    SlotDto {
        id: s.id.to_string(),
        start: s.time.start,
        end: s.time.end,
        local_start: s.time.start.with_timezone(&zone).to_rfc3339(),
        provider_id: s.provider.to_string(),
        location_id: s.location.to_string(),
        visit_type_id: s.visit_type.to_string(),
        state: match s.state {
            SlotState::Open => "open",
            SlotState::Blocked => "blocked",
            SlotState::Booked(_) => "booked",
        }
        .to_owned(),
    }
}

fn appointment_dto(v: &AppointmentView) -> AppointmentDto {
    let a = &v.appointment;
    let (state, cancelled_at, cancel_reason) = match &a.state {
        AppointmentState::Booked => ("booked", None, None),
        AppointmentState::Cancelled { at, reason, .. } => ("cancelled", Some(*at), reason.clone()),
    };
    let booked = a.state == AppointmentState::Booked;
    AppointmentDto {
        id: a.id.to_string(),
        patient_id: a.patient.to_string(),
        slot_id: a.slot.to_string(),
        start: a.time.start,
        end: a.time.end,
        local_start: a
            .time
            .start
            .with_timezone(&v.location.time_zone)
            .to_rfc3339(),
        time_zone: v.location.time_zone.name().to_owned(),
        visit_type: visit_type_dto(&v.visit_type),
        location: location_dto(&v.location),
        provider_name: v.provider.name.clone(),
        place: v.place(),
        video_url: v
            .provider
            .video_url
            .clone()
            .filter(|_| v.visit_type.mode == VisitMode::Video),
        reason: a.reason.clone(),
        booked_at: a.booked_at,
        state: state.to_owned(),
        cancelled_at,
        cancel_reason,
        upcoming: v.upcoming,
        changeable: v.changeable,
        cancel_cutoff_hours: v.cutoff_hours,
        waitlisted: v.waiting,
        calendar_url: booked.then(|| format!("/api/v1/appointments/{}/calendar", a.id)),
    }
}

fn day_entry_dto(e: &DayEntry, zone: salus_domain::chrono_tz::Tz) -> DayEntryDto {
    DayEntryDto {
        slot: slot_dto(&e.slot, zone),
        appointment_id: e.appointment.as_ref().map(|a| a.id.to_string()),
        patient_id: e.appointment.as_ref().map(|a| a.patient.to_string()),
        patient_name: e.patient_name.clone(),
        reason: e.appointment.as_ref().map(|a| a.reason.clone()),
    }
}

/// An appointment as an iCalendar file.
pub struct CalendarFile(String);

impl poem::IntoResponse for CalendarFile {
    fn into_response(self) -> poem::Response {
        poem::Response::builder()
            .content_type("text/calendar; charset=utf-8")
            .body(self.0)
    }
}

impl poem_openapi::ResponseContent for CalendarFile {
    fn media_types() -> Vec<poem_openapi::registry::MetaMediaType> {
        vec![poem_openapi::registry::MetaMediaType {
            content_type: "text/calendar",
            schema: poem_openapi::registry::MetaSchemaRef::Inline(Box::new(
                poem_openapi::registry::MetaSchema::new("string"),
            )),
        }]
    }
}

#[derive(ApiResponse)]
enum CalendarAnswer {
    /// The visit as an RFC 5545 calendar file, in the location's time zone.
    #[oai(status = 200)]
    File(
        CalendarFile,
        #[oai(header = "Content-Disposition")] String,
        #[oai(header = "X-Content-Type-Options")] String,
    ),
    /// `forbidden`: not for this role.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `not_found`: no such appointment, or not yours.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// `not_booked`: the appointment was cancelled.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
}

pub(crate) struct SchedulingApi {
    pub(crate) scheduling: salus_domain::scheduling::SchedulingService,
}

impl SchedulingApi {
    /// One appointment's answer, or the refusal.
    fn one(
        done: Result<AppointmentView, SchedulingError>,
        created: bool,
    ) -> Result<Answer<AppointmentDto>, ApiError> {
        match done {
            Ok(v) if created => Ok(Answer::Created(Json(appointment_dto(&v)))),
            Ok(v) => Ok(Answer::Ok(Json(appointment_dto(&v)))),
            Err(e) => refused(e),
        }
    }

    /// The set-up after a change by staff.
    async fn setup_after(
        &self,
        actor: &salus_domain::access::Actor,
        change: Result<(), SchedulingError>,
    ) -> Result<Answer<SetupDto>, ApiError> {
        if let Err(e) = change {
            return refused(e);
        }
        match self.scheduling.setup(actor).await {
            Ok(s) => Ok(Answer::Created(Json(setup_dto(&s, true)))),
            Err(e) => refused(e),
        }
    }
}

#[OpenApi(tag = "ApiTags::Scheduling")]
impl SchedulingApi {
    /// The patient's side (or the front desk with `patient_id`): the visit types you may
    /// book, the organisation's locations and providers, and its cancellation cut-off.
    #[oai(
        path = "/v1/booking/options",
        method = "get",
        operation_id = "bookingOptions"
    )]
    async fn options(
        &self,
        req: &Request,
        token: SessionToken,
        patient_id: Query<Option<String>>,
    ) -> Result<Answer<SetupDto>, ApiError> {
        let actor = actor_or!(token);
        let patient = match chart(patient_id.0.as_deref()) {
            Ok(p) => p,
            Err(e) => return refused(e),
        };
        match self
            .scheduling
            .bookable(&actor, patient, request_id(req).as_deref())
            .await
        {
            Ok(s) => Ok(Answer::Ok(Json(setup_dto(&s, false)))),
            Err(e) => refused(e),
        }
    }

    /// Open times of a visit type, optionally of one provider or location, from `from`
    /// (RFC 3339 or `YYYY-MM-DD`; now when left out) until `until`, earliest first, at most
    /// `limit` (1–100, default 20): the first is the next available, however far ahead.
    #[oai(path = "/v1/slots", method = "get", operation_id = "searchSlots")]
    #[allow(clippy::too_many_arguments)]
    async fn search(
        &self,
        req: &Request,
        token: SessionToken,
        visit_type_id: Query<String>,
        provider_id: Query<Option<String>>,
        location_id: Query<Option<String>>,
        from: Query<Option<String>>,
        until: Query<Option<String>>,
        limit: Query<Option<u32>>,
        patient_id: Query<Option<String>>,
    ) -> Result<Answer<SlotList>, ApiError> {
        let actor = actor_or!(token);
        let query = (|| {
            let patient = chart(patient_id.0.as_deref())?;
            let kind = VisitTypeId::parse(&visit_type_id.0)
                .map_err(|_| bad_query("Give visit_type_id as one of the visit types' ids."))?;
            let provider = provider_id
                .0
                .as_deref()
                .map(ProviderId::parse)
                .transpose()
                .map_err(|_| bad_query("Give provider_id as one of the providers' ids."))?;
            let location = location_id
                .0
                .as_deref()
                .map(LocationId::parse)
                .transpose()
                .map_err(|_| bad_query("Give location_id as one of the locations' ids."))?;
            let when = |t: Option<&str>| {
                t.map(|t| instant(t).ok_or(bad_query("Give times as RFC 3339 or YYYY-MM-DD.")))
                    .transpose()
            };
            let from = when(from.0.as_deref())?.unwrap_or(DateTime::<Utc>::MIN_UTC);
            let until = when(until.0.as_deref())?;
            let limit = limit.0.unwrap_or(20);
            if !(1..=100).contains(&limit) {
                return Err(bad_query("Give a limit of 1 to 100."));
            }
            Ok((
                patient,
                SlotQuery {
                    visit_type: kind,
                    provider,
                    location,
                    from,
                    until,
                    limit,
                },
            ))
        })();
        let (patient, query) = match query {
            Ok(q) => q,
            Err(e) => return refused(e),
        };
        let (slots, places) = match self
            .scheduling
            .search(&actor, patient, query, request_id(req).as_deref())
            .await
        {
            Ok(found) => found,
            Err(e) => return refused(e),
        };
        Ok(Answer::Ok(Json(SlotList {
            slots: slots
                .iter()
                .map(|s| {
                    let zone = places
                        .iter()
                        .find(|l| l.id == s.location)
                        .map_or(salus_domain::chrono_tz::UTC, |l| l.time_zone);
                    slot_dto(s, zone)
                })
                .collect(),
        })))
    }

    /// The patient's side (or the front desk with `patient_id`): appointments, earliest
    /// first, cancelled ones included.
    #[oai(
        path = "/v1/appointments",
        method = "get",
        operation_id = "listAppointments"
    )]
    async fn list(
        &self,
        req: &Request,
        token: SessionToken,
        patient_id: Query<Option<String>>,
    ) -> Result<Answer<AppointmentList>, ApiError> {
        let actor = actor_or!(token);
        let patient = match chart(patient_id.0.as_deref()) {
            Ok(p) => p,
            Err(e) => return refused(e),
        };
        match self
            .scheduling
            .appointments(&actor, patient, request_id(req).as_deref())
            .await
        {
            Ok(all) => Ok(Answer::Ok(Json(AppointmentList {
                appointments: all.iter().map(appointment_dto).collect(),
            }))),
            Err(e) => refused(e),
        }
    }

    /// Books an open time with your reason (front desk: for `patient_id`). Of several
    /// bookings of one time, one gets it; the others answer `409 slot_taken`.
    #[oai(
        path = "/v1/appointments",
        method = "post",
        operation_id = "bookAppointment"
    )]
    async fn book(
        &self,
        req: &Request,
        token: SessionToken,
        b: Json<BookInput>,
    ) -> Result<Answer<AppointmentDto>, ApiError> {
        let actor = actor_or!(token);
        let slot = id_or!(SlotId, &b.0.slot_id);
        let patient = match chart(b.0.patient_id.as_deref()) {
            Ok(p) => p,
            Err(e) => return refused(e),
        };
        Self::one(
            self.scheduling
                .book(
                    &actor,
                    patient,
                    slot,
                    &b.0.reason,
                    request_id(req).as_deref(),
                )
                .await,
            true,
        )
    }

    /// One appointment: when, where (or the video link), with whom, what to bring.
    #[oai(
        path = "/v1/appointments/:id",
        method = "get",
        operation_id = "getAppointment"
    )]
    async fn get(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
    ) -> Result<Answer<AppointmentDto>, ApiError> {
        let actor = actor_or!(token);
        let id = id_or!(AppointmentId, &id.0);
        Self::one(
            self.scheduling
                .appointment(&actor, id, request_id(req).as_deref())
                .await,
            false,
        )
    }

    /// A booked appointment as an iCalendar file (RFC 5545) in the location's time zone.
    #[oai(
        path = "/v1/appointments/:id/calendar",
        method = "get",
        operation_id = "appointmentCalendar"
    )]
    async fn calendar(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
    ) -> Result<CalendarAnswer, ApiError> {
        let no = |e: SchedulingError| body(e.code(), &e.to_string());
        let Ok(actor) = token.actor() else {
            return Ok(CalendarAnswer::Forbidden(no(SchedulingError::Forbidden)));
        };
        let Ok(id) = AppointmentId::parse(&id.0) else {
            return Ok(CalendarAnswer::NotFound(no(SchedulingError::NotFound)));
        };
        match self
            .scheduling
            .calendar(&actor, id, request_id(req).as_deref())
            .await
        {
            Ok(ics) => Ok(CalendarAnswer::File(
                CalendarFile(ics),
                "attachment; filename=\"appointment.ics\"".to_owned(),
                "nosniff".to_owned(),
            )),
            Err(SchedulingError::Repo(r)) => Err(r.into()),
            Err(e @ SchedulingError::NotBooked) => Ok(CalendarAnswer::Conflict(no(e))),
            Err(e) => Ok(CalendarAnswer::NotFound(no(e))),
        }
    }

    /// Cancels an appointment: online up to the organisation's cut-off (later,
    /// `409 past_cutoff`: call the clinic); the front desk any time, with a reason the
    /// patient reads.
    #[oai(
        path = "/v1/appointments/:id/cancel",
        method = "post",
        operation_id = "cancelAppointment"
    )]
    async fn cancel(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
        b: Json<CancelInput>,
    ) -> Result<Answer<AppointmentDto>, ApiError> {
        let actor = actor_or!(token);
        let id = id_or!(AppointmentId, &id.0);
        Self::one(
            self.scheduling
                .cancel(
                    &actor,
                    id,
                    b.0.reason.as_deref(),
                    request_id(req).as_deref(),
                )
                .await,
            false,
        )
    }

    /// Moves an appointment to another open time of its visit type: the new time is taken
    /// before the old one is freed; if it is gone (`409 slot_taken`), nothing changes.
    #[oai(
        path = "/v1/appointments/:id/reschedule",
        method = "post",
        operation_id = "rescheduleAppointment"
    )]
    async fn reschedule(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
        b: Json<RescheduleInput>,
    ) -> Result<Answer<AppointmentDto>, ApiError> {
        let actor = actor_or!(token);
        let id = id_or!(AppointmentId, &id.0);
        let to = id_or!(SlotId, &b.0.slot_id);
        Self::one(
            self.scheduling
                .reschedule(&actor, id, to, request_id(req).as_deref())
                .await,
            false,
        )
    }

    /// Asks to be emailed when an earlier time of this visit type opens. The time is not
    /// held: it is yours if you move to it first.
    #[oai(
        path = "/v1/appointments/:id/waitlist",
        method = "put",
        operation_id = "joinWaitlist"
    )]
    async fn join_waitlist(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
    ) -> Result<Answer<AppointmentDto>, ApiError> {
        let actor = actor_or!(token);
        let id = id_or!(AppointmentId, &id.0);
        Self::one(
            self.scheduling
                .join_waitlist(&actor, id, request_id(req).as_deref())
                .await,
            false,
        )
    }

    /// Stops waiting for an earlier time.
    #[oai(
        path = "/v1/appointments/:id/waitlist",
        method = "delete",
        operation_id = "leaveWaitlist"
    )]
    async fn leave_waitlist(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
    ) -> Result<Answer<AppointmentDto>, ApiError> {
        let actor = actor_or!(token);
        let id = id_or!(AppointmentId, &id.0);
        Self::one(
            self.scheduling
                .leave_waitlist(&actor, id, request_id(req).as_deref())
                .await,
            false,
        )
    }

    /// Front desk and administrators: the organisation's locations, providers, visit
    /// types, weekly templates and cut-off.
    #[oai(
        path = "/v1/staff/schedule/setup",
        method = "get",
        operation_id = "scheduleSetup"
    )]
    async fn setup(&self, token: SessionToken) -> Result<Answer<SetupDto>, ApiError> {
        let actor = actor_or!(token);
        match self.scheduling.setup(&actor).await {
            Ok(s) => Ok(Answer::Ok(Json(setup_dto(&s, true)))),
            Err(e) => refused(e),
        }
    }

    /// Front desk and administrators: adds a location.
    #[oai(
        path = "/v1/staff/schedule/locations",
        method = "post",
        operation_id = "addLocation"
    )]
    async fn add_location(
        &self,
        token: SessionToken,
        b: Json<LocationInput>,
    ) -> Result<Answer<SetupDto>, ApiError> {
        let actor = actor_or!(token);
        let done = self
            .scheduling
            .add_location(
                &actor,
                NewLocation {
                    name: &b.0.name,
                    address: &b.0.address,
                    time_zone: &b.0.time_zone,
                },
            )
            .await
            .map(|_| ());
        self.setup_after(&actor, done).await
    }

    /// Front desk and administrators: adds a bookable provider.
    #[oai(
        path = "/v1/staff/schedule/providers",
        method = "post",
        operation_id = "addProvider"
    )]
    async fn add_provider(
        &self,
        token: SessionToken,
        b: Json<ProviderInput>,
    ) -> Result<Answer<SetupDto>, ApiError> {
        let actor = actor_or!(token);
        let done = self
            .scheduling
            .add_provider(
                &actor,
                NewProvider {
                    practitioner: b.0.practitioner_id.as_deref().unwrap_or_default(),
                    name: &b.0.name,
                    video_url: &b.0.video_url,
                },
            )
            .await
            .map(|_| ());
        self.setup_after(&actor, done).await
    }

    /// Front desk and administrators: adds a visit type.
    #[oai(
        path = "/v1/staff/schedule/visit-types",
        method = "post",
        operation_id = "addVisitType"
    )]
    async fn add_visit_type(
        &self,
        token: SessionToken,
        b: Json<VisitTypeInput>,
    ) -> Result<Answer<SetupDto>, ApiError> {
        let actor = actor_or!(token);
        let (minutes, max) = (b.0.minutes.to_string(), b.0.max_per_patient.to_string());
        let done = self
            .scheduling
            .add_visit_type(
                &actor,
                NewVisitType {
                    name: &b.0.name,
                    minutes: &minutes,
                    mode: &b.0.mode,
                    online: &b.0.online,
                    max_per_patient: &max,
                    bring: &b.0.bring,
                },
            )
            .await
            .map(|_| ());
        self.setup_after(&actor, done).await
    }

    /// Front desk and administrators: publishes a weekly template ("Mondays 09:00–12:00")
    /// of a provider at a location for a visit type; its slots are generated at once for
    /// the horizon.
    #[oai(
        path = "/v1/staff/schedule/templates",
        method = "post",
        operation_id = "addTemplate"
    )]
    async fn add_template(
        &self,
        token: SessionToken,
        b: Json<TemplateInput>,
    ) -> Result<Answer<SetupDto>, ApiError> {
        let actor = actor_or!(token);
        let b = b.0;
        let done = self
            .scheduling
            .add_template(
                &actor,
                NewTemplate {
                    provider: &b.provider_id,
                    location: &b.location_id,
                    visit_type: &b.visit_type_id,
                    weekday: &b.weekday,
                    start: &b.start,
                    end: &b.end,
                    valid_from: &b.valid_from,
                    valid_until: &b.valid_until,
                },
            )
            .await
            .map(|_| ());
        self.setup_after(&actor, done).await
    }

    /// Front desk and administrators: a provider's day off. That day's open times go;
    /// booked ones stay, to move or cancel with a reason.
    #[oai(
        path = "/v1/staff/schedule/days-off",
        method = "post",
        operation_id = "addDayOff"
    )]
    async fn add_day_off(
        &self,
        token: SessionToken,
        b: Json<DayOffInput>,
    ) -> Result<Answer<DayOffDone>, ApiError> {
        let actor = actor_or!(token);
        match self
            .scheduling
            .add_day_off(&actor, &b.0.provider_id, &b.0.date, &b.0.reason)
            .await
        {
            Ok(removed_slots) => Ok(Answer::Created(Json(DayOffDone { removed_slots }))),
            Err(e) => refused(e),
        }
    }

    /// Administrators and front desk: the hours before a visit when cancelling or moving it
    /// online ends, for this organisation.
    #[oai(
        path = "/v1/staff/schedule/cutoff",
        method = "put",
        operation_id = "setCancelCutoff"
    )]
    async fn set_cutoff(
        &self,
        token: SessionToken,
        b: Json<CutoffInput>,
    ) -> Result<Answer<SetupDto>, ApiError> {
        let actor = actor_or!(token);
        let done = self
            .scheduling
            .set_cancel_cutoff(&actor, &b.0.hours.to_string())
            .await
            .map(|_| ());
        if let Err(e) = done {
            return refused(e);
        }
        match self.scheduling.setup(&actor).await {
            Ok(s) => Ok(Answer::Ok(Json(setup_dto(&s, true)))),
            Err(e) => refused(e),
        }
    }

    /// Front desk and administrators: takes an open time out (`409 slot_taken` when it is
    /// booked or blocked already).
    #[oai(
        path = "/v1/staff/slots/:id/block",
        method = "post",
        operation_id = "blockSlot"
    )]
    async fn block(
        &self,
        token: SessionToken,
        id: Path<String>,
    ) -> Result<Answer<SetupDto>, ApiError> {
        let actor = actor_or!(token);
        let id = id_or!(SlotId, &id.0);
        match self.scheduling.block_slot(&actor, id, true).await {
            Ok(()) => Ok(Answer::Done),
            Err(e) => refused(e),
        }
    }

    /// Front desk and administrators: opens a blocked time again.
    #[oai(
        path = "/v1/staff/slots/:id/unblock",
        method = "post",
        operation_id = "unblockSlot"
    )]
    async fn unblock(
        &self,
        token: SessionToken,
        id: Path<String>,
    ) -> Result<Answer<SetupDto>, ApiError> {
        let actor = actor_or!(token);
        let id = id_or!(SlotId, &id.0);
        match self.scheduling.block_slot(&actor, id, false).await {
            Ok(()) => Ok(Answer::Done),
            Err(e) => refused(e),
        }
    }

    /// Front desk and administrators: `days` (1–7, default 1) of the schedule from `from`
    /// (`YYYY-MM-DD`), optionally of one provider or location: every time, open, blocked or
    /// booked, with the patient of each booking.
    #[oai(
        path = "/v1/staff/schedule",
        method = "get",
        operation_id = "scheduleDays"
    )]
    async fn days(
        &self,
        req: &Request,
        token: SessionToken,
        from: Query<String>,
        days: Query<Option<u32>>,
        provider_id: Query<Option<String>>,
        location_id: Query<Option<String>>,
    ) -> Result<Answer<DayView>, ApiError> {
        let actor = actor_or!(token);
        let Ok(day) = NaiveDate::parse_from_str(&from.0, "%Y-%m-%d") else {
            return refused(bad_query("Give from as YYYY-MM-DD."));
        };
        let Ok(provider) = provider_id.0.as_deref().map(ProviderId::parse).transpose() else {
            return refused(bad_query("Give provider_id as one of the providers' ids."));
        };
        let Ok(location) = location_id.0.as_deref().map(LocationId::parse).transpose() else {
            return refused(bad_query("Give location_id as one of the locations' ids."));
        };
        let rid = request_id(req);
        let entries = match self
            .scheduling
            .day_view(
                &actor,
                day,
                days.0.unwrap_or(1),
                provider,
                location,
                rid.as_deref(),
            )
            .await
        {
            Ok(e) => e,
            Err(e) => return refused(e),
        };
        let places = match self.scheduling.setup(&actor).await {
            Ok(s) => s,
            Err(e) => return refused(e),
        };
        Ok(Answer::Ok(Json(DayView {
            entries: entries
                .iter()
                .map(|e| {
                    let zone = places
                        .location(e.slot.location)
                        .map_or(salus_domain::chrono_tz::UTC, |l| l.time_zone);
                    day_entry_dto(e, zone)
                })
                .collect(),
        })))
    }
}

crate::redacted_debug!(
    AppointmentDto,
    AppointmentList,
    DayEntryDto,
    DayView,
    BookInput,
    CancelInput,
    RescheduleInput
);
