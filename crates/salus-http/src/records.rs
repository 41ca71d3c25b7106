//! Records online: the chart summary, lists per kind, one record with its context, the
//! access history, and the clinician's filing and release. Authorisation and auditing live in
//! the domain's `RecordsService`; this module authenticates and converts.

use crate::codes::{Code, Flags, Kinds, Labels, Outcomes, Statuses};
use crate::detail::RecordDetail;
use crate::error::{ApiError, ErrorBody};
use crate::payload::JsonOut;
use crate::session::SessionToken;
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use salus_domain::access::Actor;
use salus_domain::audit::{AccessEntry, Who};
use salus_domain::chart::{
    ChartSummary, FileError, FilingOutcome, ListFilter, ListRequest, NewRecordInput, ReadError,
    RecordView, RecordsService, ReleaseError, Shown,
};
use salus_domain::patient::ChartSearch;
use salus_domain::record::{ClinicalRecord, Cursor, RecordBody, RecordKind, SensitivityLabels};
use salus_domain::text::DisplayName;
use salus_domain::{PatientId, RecordId};

#[derive(Tags)]
pub(crate) enum ApiTags {
    /// Medical records: what a patient sees, and what clinicians file and release.
    Records,
}

/// Where a record came from.
#[derive(Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct SourceDto {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub performer: Option<String>,
    /// True when it came from another organisation than the one running this portal.
    pub from_outside: bool,
}

/// A record of any kind.
#[derive(Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct RecordDto {
    pub id: String,
    pub kind: Code<Kinds>,
    pub title: String,
    pub status: Code<Statuses>,
    /// When it happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::payload::rfc3339::option::serialize")]
    pub date: Option<chrono::DateTime<chrono::Utc>>,
    /// When it reached the portal.
    #[serde(serialize_with = "crate::payload::rfc3339::serialize")]
    pub filed_at: chrono::DateTime<chrono::Utc>,
    /// The visit it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visit_id: Option<String>,
    pub source: SourceDto,
    /// Sensitive categories it carries (show a notice before the content).
    pub sensitive: Vec<Code<Labels>>,
    /// Results: the value as read ("5.4 mmol/L").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Results: the normal range as read ("3.5 to 5.0").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_range: Option<String>,
    /// Results: how the value compares with the normal range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<Code<Flags>>,
    /// Results: true when outside the normal range.
    pub abnormal: bool,
    /// Everything else about the record, by kind: in `GET /v1/records/{id}` (the record
    /// itself) and when filed; lists and the summary leave it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<RecordDetail>,
}

#[derive(Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct RecordPage {
    pub records: Vec<RecordDto>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One value of a result over time.
#[derive(Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct TrendPoint {
    pub record_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::payload::rfc3339::option::serialize")]
    pub date: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
}

#[derive(Object, serde::Serialize)]
pub struct RecordViewDto {
    pub record: RecordDto,
    /// A visit's records, a report's results, or the report a result belongs to.
    pub related: Vec<RecordDto>,
}

/// A result's values over time (`GET /v1/records/{id}/trend`).
#[derive(Object, serde::Serialize)]
pub struct TrendDto {
    /// The result asked about.
    pub record_id: String,
    /// The same test over time, oldest first, this result included; empty for a record that
    /// is not a coded result.
    pub points: Vec<TrendPoint>,
}

#[derive(Debug, Object, serde::Serialize)]
pub struct KindCount {
    pub kind: Code<Kinds>,
    pub label: String,
    pub count: u64,
}

/// Whose chart it is.
#[derive(Object, serde::Serialize)]
pub struct PatientHeader {
    pub id: String,
    pub given_name: String,
    pub family_name: String,
    pub birth_date: chrono::NaiveDate,
    /// Medical record number.
    pub mrn: String,
}

#[derive(Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct SummaryDto {
    pub patient: PatientHeader,
    /// Clinicians only: records waiting for release.
    pub held: Vec<RecordDto>,
    pub recent_results: Vec<RecordDto>,
    pub active_medications: Vec<RecordDto>,
    pub active_problems: Vec<RecordDto>,
    pub allergies: Vec<RecordDto>,
    pub recent_visits: Vec<RecordDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::payload::rfc3339::option::serialize")]
    pub last_visit: Option<chrono::DateTime<chrono::Utc>>,
    /// Records of the last visit or since, by kind.
    pub new_since_last_visit: Vec<KindCount>,
    pub counts: Vec<KindCount>,
}

/// One entry of the access history.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AccessEntryDto {
    pub seq: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    /// `you`, the person's name, or `someone with a share link`.
    pub who: String,
    /// Staff role, when staff.
    pub role: Option<String>,
    /// `patient`, `staff`, `proxy` or `share_link`.
    pub actor_kind: String,
    /// The grant used by a proxy or share link.
    pub grant_id: Option<String>,
    /// `view_chart`, `read`, `export`, `create`, `release`, `view_access_history`.
    pub action: String,
    pub record_kind: Option<Code<Kinds>>,
    pub record_id: Option<String>,
    pub outcome: Code<Outcomes>,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AccessHistoryDto {
    pub entries: Vec<AccessEntryDto>,
    /// Pass as `before` for older entries; absent at the start.
    pub next_before: Option<i64>,
}

/// A result or note a clinician files.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct NewRecordDto {
    /// `lab_result` or `note`.
    pub kind: String,
    /// Lab result: the test's name.
    pub title: String,
    /// Lab result: the test's LOINC code (optional).
    pub loinc: Option<String>,
    /// Lab result: the numeric value.
    pub value: Option<f64>,
    pub unit: Option<String>,
    pub reference_low: Option<f64>,
    pub reference_high: Option<f64>,
    /// Note: the plain text.
    pub text: Option<String>,
    /// Sensitivity label codes (`mental_health`, `substance_use`, `hiv`, ...).
    #[oai(default)]
    pub sensitive: Vec<String>,
    pub visit_id: Option<String>,
}

#[derive(Object)]
pub struct Filed {
    pub record: RecordDto,
    /// `released`, `released_later` or `held`: when the patient sees it.
    pub release: String,
}

/// A record held for release and whose chart it is in.
#[derive(Object)]
pub struct HeldRecordDto {
    pub record: RecordDto,
    pub patient: crate::identity::Candidate,
}

#[derive(Object)]
pub struct HeldRecords {
    /// Oldest filed first.
    pub records: Vec<HeldRecordDto>,
}

#[derive(ApiResponse)]
enum HeldResponse {
    #[oai(status = 200)]
    Ok(Json<HeldRecords>),
    /// `no_chart`: a patient account without a record.
    #[oai(status = 403)]
    NoChart(Json<ErrorBody>),
    /// `not_found`: only staff have this list.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ChartSearchRequest {
    /// Part of the given or family name (at least two letters).
    pub name: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
}

#[derive(Object)]
pub struct ChartsFound {
    /// Charts of your organisation born that day with the name searched, by family name.
    pub charts: Vec<crate::identity::Candidate>,
}

#[derive(ApiResponse)]
enum SearchResponse {
    #[oai(status = 200)]
    Ok(Json<ChartsFound>),
    /// `invalid_name` (at least two letters) or `invalid_birth_date`.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// `no_chart`: a patient account without a record.
    #[oai(status = 403)]
    NoChart(Json<ErrorBody>),
    /// `not_found`: only staff search charts.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

#[derive(ApiResponse)]
enum ListResponse {
    #[oai(status = 200)]
    Ok(JsonOut<RecordPage>),
    /// `invalid_kind`, `invalid_date`, `invalid_status`, `invalid_cursor`.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// `no_chart`: the account is not connected to a medical record yet.
    #[oai(status = 403)]
    NoChart(Json<ErrorBody>),
    /// `not_found`: no such chart, or not yours to see (the same answer).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

#[derive(ApiResponse)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per response, moved once"
)]
enum ViewResponse {
    #[oai(status = 200)]
    Ok(JsonOut<RecordViewDto>),
    /// `no_chart`.
    #[oai(status = 403)]
    NoChart(Json<ErrorBody>),
    /// `not_found`: no such record, or not yours to see (the same answer).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

#[derive(ApiResponse)]
enum TrendResponse {
    #[oai(status = 200)]
    Ok(JsonOut<TrendDto>),
    /// `no_chart`.
    #[oai(status = 403)]
    NoChart(Json<ErrorBody>),
    /// `not_found`: no such record, or not yours to see (the same answer).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

#[derive(ApiResponse)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per response, moved once"
)]
enum SummaryResponse {
    #[oai(status = 200)]
    Ok(JsonOut<SummaryDto>),
    /// `no_chart`.
    #[oai(status = 403)]
    NoChart(Json<ErrorBody>),
    /// `not_found`.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

#[derive(ApiResponse)]
enum HistoryResponse {
    #[oai(status = 200)]
    Ok(Json<AccessHistoryDto>),
    /// `no_chart`.
    #[oai(status = 403)]
    NoChart(Json<ErrorBody>),
    /// `not_found`: only patients have an access history of their own.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

#[derive(ApiResponse)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per response, moved once"
)]
enum FileResponse {
    #[oai(status = 201)]
    Created(Json<Filed>),
    /// `invalid_record` (what is missing is in the message), `invalid_label`.
    #[oai(status = 400)]
    Invalid(Json<ErrorBody>),
    /// `no_chart`.
    #[oai(status = 403)]
    NoChart(Json<ErrorBody>),
    /// `not_found`: no such chart in your organisation, or your role may not file.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

#[derive(ApiResponse)]
enum ReleaseResponse {
    /// Released: the patient sees it now.
    #[oai(status = 204)]
    Done,
    /// `no_chart`.
    #[oai(status = 403)]
    NoChart(Json<ErrorBody>),
    /// `not_found`.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// `not_held`: already released, or never shown online.
    #[oai(status = 409)]
    NotHeld(Json<ErrorBody>),
}

/// The answers every records endpoint shares.
pub(crate) enum Refusal {
    NoChart,
    NotFound,
}

pub(crate) fn no_chart() -> Json<ErrorBody> {
    ErrorBody::new(
        "no_chart",
        &salus_domain::chart::ReadError::NoChart.to_string(),
    )
}
pub(crate) fn not_found() -> Json<ErrorBody> {
    ErrorBody::new("not_found", "No such record.")
}
fn invalid(code: &str, message: &str) -> Json<ErrorBody> {
    ErrorBody::new(code, message)
}

pub(crate) fn request_id(req: &Request) -> Option<String> {
    req.headers()
        .get(crate::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Turns a read's failure into a refusal or a server error.
pub(crate) fn refusal(e: ReadError) -> Result<Refusal, ApiError> {
    match e {
        ReadError::NotFound => Ok(Refusal::NotFound),
        ReadError::NoChart => Ok(Refusal::NoChart),
        ReadError::AuditUnavailable => Err(audit_unavailable()),
        ReadError::Repo(r) => Err(r.into()),
    }
}

/// The audit entry could not be written, so nothing was answered or changed.
pub(crate) fn audit_unavailable() -> ApiError {
    ApiError::Unavailable(ErrorBody::new(
        "audit_unavailable",
        "Records cannot be shown right now. Please try again in a few minutes.",
    ))
}

fn labels(l: SensitivityLabels) -> Vec<Code<Labels>> {
    l.iter().map(|x| Code::new(x.code())).collect()
}

/// A record for the API; `detail` carries the kind-specific body (only where one record is
/// shown: building it for every row of a list would double the work of a page).
pub fn record_dto(s: &Shown<ClinicalRecord>, detail: bool) -> RecordDto {
    let r = &s.item;
    let (value, reference_range, flag) = r.body.result_line().unwrap_or_default();
    let src = &r.meta.source;
    let name = |d: &Option<DisplayName>| d.as_ref().map(|n| n.as_str().to_owned());
    RecordDto {
        id: r.meta.id.to_string(),
        kind: Code::new(r.kind().code()),
        title: r.body.title().to_owned(),
        status: Code::new(r.body.status()),
        date: r.body.effective_at(),
        filed_at: r.meta.filed_at,
        visit_id: r.meta.encounter_id.map(|e| e.to_string()),
        source: SourceDto {
            organization: name(&src.organization),
            author: name(&src.author),
            performer: name(&src.performer),
            from_outside: src.from_outside,
        },
        sensitive: labels(r.meta.sensitivity),
        value,
        reference_range,
        flag: flag.map(|f| Code::new(f.code())),
        abnormal: flag.is_some_and(|f| f.is_abnormal()),
        detail: detail.then(|| RecordDetail::from(&r.body)),
    }
}

fn dtos(v: &[Shown<ClinicalRecord>]) -> Vec<RecordDto> {
    v.iter().map(|s| record_dto(s, false)).collect()
}

fn counts(m: &std::collections::BTreeMap<RecordKind, u64>) -> Vec<KindCount> {
    m.iter()
        .map(|(k, n)| KindCount {
            kind: Code::new(k.code()),
            label: k.label().to_owned(),
            count: *n,
        })
        .collect()
}

pub fn summary_dto(s: &ChartSummary) -> SummaryDto {
    SummaryDto {
        patient: PatientHeader {
            id: s.patient.id.to_string(),
            given_name: s.patient.name.given().to_owned(),
            family_name: s.patient.name.family().to_owned(),
            birth_date: s.patient.birth_date,
            mrn: s.patient.mrn.as_str().to_owned(),
        },
        held: dtos(&s.held),
        recent_results: dtos(&s.recent_results),
        active_medications: dtos(&s.active_medications),
        active_problems: dtos(&s.active_problems),
        allergies: dtos(&s.allergies),
        recent_visits: dtos(&s.recent_visits),
        last_visit: s.last_visit,
        new_since_last_visit: counts(&s.new_since_last_visit),
        counts: counts(&s.counts),
    }
}

fn view_dto(v: &RecordView) -> RecordViewDto {
    RecordViewDto {
        record: record_dto(&v.record, true),
        related: dtos(&v.related),
    }
}

fn trend_dto(v: &RecordView) -> TrendDto {
    TrendDto {
        record_id: v.record.item.meta.id.to_string(),
        points: v
            .trend
            .iter()
            .map(|r| {
                let (value, unit, flag) = match &r.body {
                    RecordBody::Observation(o) => (
                        o.numeric().map(|(v, _)| v),
                        o.numeric().and_then(|(_, u)| u.map(str::to_owned)),
                        o.effective_flag().map(|f| f.code().to_owned()),
                    ),
                    _ => (None, None, None),
                };
                TrendPoint {
                    record_id: r.meta.id.to_string(),
                    date: r.body.effective_at(),
                    value,
                    unit,
                    flag,
                }
            })
            .collect(),
    }
}

fn history_dto(me: Option<salus_domain::AccountId>, entries: &[AccessEntry]) -> AccessHistoryDto {
    AccessHistoryDto {
        next_before: if entries.is_empty() {
            None
        } else {
            entries.last().map(|e| e.seq)
        },
        entries: entries
            .iter()
            .map(|e| AccessEntryDto {
                seq: e.seq,
                at: e.at,
                who: match e.who(me) {
                    Who::You => "you".into(),
                    Who::Named(name) => name,
                    Who::ShareLink => "someone with a share link".into(),
                },
                role: e.accessor.role.map(|r| r.code().to_owned()),
                actor_kind: e.accessor.kind.clone(),
                grant_id: e.accessor.grant.map(|g| g.to_string()),
                action: e.action.clone(),
                record_kind: e.record_kind.map(|k| Code::new(k.code())),
                record_id: e.record.map(|r| r.to_string()),
                outcome: Code::new(e.outcome.code()),
            })
            .collect(),
    }
}

pub(crate) struct RecordsApi {
    pub(crate) records: RecordsService,
}

/// The session's actor, or why there is none.
pub(crate) fn actor(token: &SessionToken) -> Result<Actor, Refusal> {
    token.actor().map_err(|_| Refusal::NoChart)
}

/// `patient_id` of a query: staff name a chart; patients may leave it out.
pub(crate) fn patient_param(v: Option<&str>) -> Result<Option<PatientId>, ()> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => PatientId::parse(v).map(Some).map_err(|_| ()),
    }
}

macro_rules! refuse {
    ($resp:ident, $r:expr) => {
        match $r {
            Refusal::NoChart => $resp::NoChart(no_chart()),
            Refusal::NotFound => $resp::NotFound(not_found()),
        }
    };
}

#[OpenApi(tag = "ApiTags::Records")]
impl RecordsApi {
    /// The chart's home: recent results (abnormal ones flagged), active medications and
    /// problems, allergies, recent visits, what is new since the last visit, and counts.
    ///
    /// Patients see their own chart (leave `patient_id` out); clinicians name a chart of
    /// their organisation. Audited.
    #[oai(path = "/v1/summary", method = "get", operation_id = "chartSummary")]
    async fn summary(
        &self,
        req: &Request,
        token: SessionToken,
        patient_id: Query<Option<String>>,
    ) -> Result<SummaryResponse, ApiError> {
        let actor = match actor(&token) {
            Ok(a) => a,
            Err(r) => return Ok(refuse!(SummaryResponse, r)),
        };
        let Ok(patient) = patient_param(patient_id.0.as_deref()) else {
            return Ok(SummaryResponse::NotFound(not_found()));
        };
        match self
            .records
            .summary(&actor, patient, request_id(req).as_deref())
            .await
        {
            Ok(s) => Ok(SummaryResponse::Ok(JsonOut(summary_dto(&s)))),
            Err(e) => Ok(refuse!(SummaryResponse, refusal(e)?)),
        }
    }

    /// One kind of record, newest first, a page at a time. Filter by dates (`from`, `until`,
    /// inclusive, `YYYY-MM-DD`), text in the title (`q`) and status codes (`status`, comma
    /// separated: e.g. `active` medications, `resolved` problems). Audited.
    #[oai(path = "/v1/records", method = "get", operation_id = "listRecords")]
    #[allow(
        clippy::too_many_arguments,
        reason = "one argument per query parameter"
    )]
    async fn list(
        &self,
        req: &Request,
        token: SessionToken,
        kind: Query<String>,
        patient_id: Query<Option<String>>,
        from: Query<Option<String>>,
        until: Query<Option<String>>,
        q: Query<Option<String>>,
        status: Query<Option<String>>,
        cursor: Query<Option<String>>,
        limit: Query<Option<u32>>,
    ) -> Result<ListResponse, ApiError> {
        let actor = match actor(&token) {
            Ok(a) => a,
            Err(r) => return Ok(refuse!(ListResponse, r)),
        };
        let Some(kind) = RecordKind::from_code(kind.0.trim()) else {
            return Ok(ListResponse::Invalid(invalid(
                "invalid_kind",
                "Unknown kind of record.",
            )));
        };
        let filter = match ListFilter::parse(
            kind,
            from.0.as_deref(),
            until.0.as_deref(),
            q.0,
            status.0.as_deref(),
        ) {
            Ok(f) => f,
            Err(e) => return Ok(ListResponse::Invalid(invalid(e.code(), &e.to_string()))),
        };
        let after = match cursor.0.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => match Cursor::from_token(c) {
                Some(c) => Some(c),
                None => {
                    return Ok(ListResponse::Invalid(invalid(
                        "invalid_cursor",
                        "This page link is not valid; start from the first page.",
                    )));
                }
            },
        };
        let Ok(patient) = patient_param(patient_id.0.as_deref()) else {
            return Ok(ListResponse::NotFound(not_found()));
        };
        let request = ListRequest {
            patient,
            kind,
            filter,
            after,
            limit: limit.0.unwrap_or(25),
        };
        match self
            .records
            .list(&actor, request, request_id(req).as_deref())
            .await
        {
            Ok(page) => Ok(ListResponse::Ok(JsonOut(RecordPage {
                records: dtos(&page.items),
                next_cursor: page.next.map(Cursor::to_token),
            }))),
            Err(e) => Ok(refuse!(ListResponse, refusal(e)?)),
        }
    }

    /// One record with its context: a visit's results, notes and diagnoses; a report's
    /// results; a result's report. Audited. A result's values over time are
    /// `GET /v1/records/{id}/trend`.
    #[oai(path = "/v1/records/:id", method = "get", operation_id = "getRecord")]
    async fn get(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
    ) -> Result<ViewResponse, ApiError> {
        let actor = match actor(&token) {
            Ok(a) => a,
            Err(r) => return Ok(refuse!(ViewResponse, r)),
        };
        let Ok(id) = RecordId::parse(&id.0) else {
            return Ok(ViewResponse::NotFound(not_found()));
        };
        match self
            .records
            .view(&actor, id, request_id(req).as_deref())
            .await
        {
            Ok(v) => Ok(ViewResponse::Ok(JsonOut(view_dto(&v)))),
            Err(e) => Ok(refuse!(ViewResponse, refusal(e)?)),
        }
    }

    /// A result's values over time: the same test (code system and code) in the same chart,
    /// oldest first, at most 100, each as the viewer may see it. Audited as a look at the
    /// result. Empty for a record that is not a coded result.
    #[oai(
        path = "/v1/records/:id/trend",
        method = "get",
        operation_id = "getRecordTrend"
    )]
    async fn trend(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
    ) -> Result<TrendResponse, ApiError> {
        let actor = match actor(&token) {
            Ok(a) => a,
            Err(r) => return Ok(refuse!(TrendResponse, r)),
        };
        let Ok(id) = RecordId::parse(&id.0) else {
            return Ok(TrendResponse::NotFound(not_found()));
        };
        match self
            .records
            .trend(&actor, id, request_id(req).as_deref())
            .await
        {
            Ok(v) => Ok(TrendResponse::Ok(JsonOut(trend_dto(&v)))),
            Err(e) => Ok(refuse!(TrendResponse, refusal(e)?)),
        }
    }

    /// Staff: find a chart of your organisation by part of the patient's name and their
    /// date of birth (both required; sent in the body so they stay out of addresses and
    /// logs). Every chart listed appears in that patient's access history as a look at who
    /// they are.
    #[oai(
        path = "/v1/staff/chart-search",
        method = "post",
        operation_id = "searchCharts"
    )]
    async fn search(
        &self,
        req: &Request,
        token: SessionToken,
        body: Json<ChartSearchRequest>,
    ) -> Result<SearchResponse, ApiError> {
        let actor = match actor(&token) {
            Ok(a) => a,
            Err(r) => return Ok(refuse!(SearchResponse, r)),
        };
        let search = match ChartSearch::from_fields(&body.0.name, &body.0.birth_date) {
            Ok(s) => s,
            Err(e) => return Ok(SearchResponse::Invalid(invalid(e.code(), &e.to_string()))),
        };
        match self
            .records
            .search_charts(&actor, &search, request_id(req).as_deref())
            .await
        {
            Ok(found) => Ok(SearchResponse::Ok(Json(ChartsFound {
                charts: found.iter().map(crate::identity::Candidate::from).collect(),
            }))),
            Err(e) => Ok(refuse!(SearchResponse, refusal(e)?)),
        }
    }

    /// Clinicians: every record held for release in your organisation's charts, oldest filed
    /// first, with whose chart it is in (release each with `POST /api/v1/records/{id}/release`).
    /// Each chart listed appears in that patient's access history. Other staff get an empty
    /// list.
    #[oai(
        path = "/v1/staff/held-records",
        method = "get",
        operation_id = "heldRecords"
    )]
    async fn held(&self, req: &Request, token: SessionToken) -> Result<HeldResponse, ApiError> {
        let actor = match actor(&token) {
            Ok(a) => a,
            Err(r) => return Ok(refuse!(HeldResponse, r)),
        };
        match self
            .records
            .held_for_release(&actor, request_id(req).as_deref())
            .await
        {
            Ok(held) => Ok(HeldResponse::Ok(Json(HeldRecords {
                records: held
                    .iter()
                    .map(|h| HeldRecordDto {
                        record: record_dto(
                            &salus_domain::chart::Shown {
                                item: h.record.clone(),
                                notice: None,
                            },
                            false,
                        ),
                        patient: crate::identity::Candidate::from(&h.patient),
                    })
                    .collect(),
            }))),
            Err(e) => Ok(refuse!(HeldResponse, refusal(e)?)),
        }
    }

    /// Who saw or changed your record, newest first: you, staff (name and role), proxies and
    /// share links, with what they did and when. Viewing it is recorded too.
    #[oai(
        path = "/v1/me/access-history",
        method = "get",
        operation_id = "accessHistory"
    )]
    async fn history(
        &self,
        req: &Request,
        token: SessionToken,
        before: Query<Option<i64>>,
        limit: Query<Option<u32>>,
    ) -> Result<HistoryResponse, ApiError> {
        let actor = match actor(&token) {
            Ok(a) => a,
            Err(r) => return Ok(refuse!(HistoryResponse, r)),
        };
        match self
            .records
            .access_history(
                &actor,
                before.0,
                limit.0.unwrap_or(50),
                request_id(req).as_deref(),
            )
            .await
        {
            Ok(entries) => Ok(HistoryResponse::Ok(Json(history_dto(
                actor.account(),
                &entries,
            )))),
            Err(e) => Ok(refuse!(HistoryResponse, refusal(e)?)),
        }
    }

    /// Clinician: file a lab result or a note in a chart of your organisation. The
    /// organisation's release policy decides when the patient sees it; the patient gets an
    /// email saying only that something new is waiting. Audited.
    #[oai(
        path = "/v1/patients/:patient_id/records",
        method = "post",
        operation_id = "fileRecord"
    )]
    async fn file(
        &self,
        req: &Request,
        token: SessionToken,
        patient_id: Path<String>,
        body: Json<NewRecordDto>,
    ) -> Result<FileResponse, ApiError> {
        let actor = match actor(&token) {
            Ok(a) => a,
            Err(r) => return Ok(refuse!(FileResponse, r)),
        };
        let name = token.account().name.full();
        let Ok(patient) = PatientId::parse(&patient_id.0) else {
            return Ok(FileResponse::NotFound(not_found()));
        };
        let author = DisplayName::parse(&name).ok();
        let new = match NewRecordInput::from(body.0).into_new_record(patient, author) {
            Ok(n) => n,
            Err(e) => return Ok(FileResponse::Invalid(invalid(e.code(), &e.to_string()))),
        };
        match self
            .records
            .file(&actor, new, request_id(req).as_deref())
            .await
        {
            Ok(record) => {
                let release = FilingOutcome::of(&record).code();
                Ok(FileResponse::Created(Json(Filed {
                    record: record_dto(
                        &Shown {
                            item: record,
                            notice: None,
                        },
                        true,
                    ),
                    release: release.into(),
                })))
            }
            Err(FileError::InvalidVisit) => Ok(FileResponse::Invalid(invalid(
                "invalid_visit",
                "visit_id is not one of this patient's visits.",
            ))),
            Err(FileError::NotFound) => Ok(FileResponse::NotFound(not_found())),
            Err(FileError::AuditUnavailable) => Err(audit_unavailable()),
            Err(FileError::Repo(r)) => Err(r.into()),
        }
    }

    /// Clinician: release a held record to the patient now. Audited.
    #[oai(
        path = "/v1/records/:id/release",
        method = "post",
        operation_id = "releaseRecord"
    )]
    async fn release(
        &self,
        req: &Request,
        token: SessionToken,
        id: Path<String>,
    ) -> Result<ReleaseResponse, ApiError> {
        let actor = match actor(&token) {
            Ok(a) => a,
            Err(r) => return Ok(refuse!(ReleaseResponse, r)),
        };
        let Ok(id) = RecordId::parse(&id.0) else {
            return Ok(ReleaseResponse::NotFound(not_found()));
        };
        match self
            .records
            .release(&actor, id, request_id(req).as_deref())
            .await
        {
            Ok(()) => Ok(ReleaseResponse::Done),
            Err(ReleaseError::NotHeld) => Ok(ReleaseResponse::NotHeld(ErrorBody::new(
                "not_held",
                &salus_domain::chart::ReleaseError::NotHeld.to_string(),
            ))),
            Err(ReleaseError::NotFound) => Ok(ReleaseResponse::NotFound(not_found())),
            Err(ReleaseError::AuditUnavailable) => Err(audit_unavailable()),
            Err(ReleaseError::Repo(r)) => Err(r.into()),
        }
    }
}

impl From<NewRecordDto> for NewRecordInput {
    fn from(b: NewRecordDto) -> Self {
        Self {
            kind: b.kind,
            title: b.title,
            loinc: b.loinc,
            value: b.value,
            unit: b.unit,
            reference_low: b.reference_low,
            reference_high: b.reference_high,
            text: b.text,
            labels: b.sensitive,
            visit: b.visit_id,
        }
    }
}

crate::redacted_debug!(
    SourceDto,
    RecordDto,
    RecordPage,
    TrendPoint,
    RecordViewDto,
    TrendDto,
    SummaryDto,
    PatientHeader,
    AccessEntryDto,
    AccessHistoryDto,
    NewRecordDto,
    Filed
);

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;
    use poem_openapi::types::ToJSON as _;

    fn dto(n: u32, full: bool) -> RecordDto {
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 11, 25, 9, 30, n)
            .single()
            .map(|t| t + chrono::Duration::microseconds(1234));
        RecordDto {
            id: format!("rec-{n}"),
            kind: Code::new("observation"),
            title: "Potassium \"serum\" <b>".into(),
            status: Code::new("final"),
            date: at.filter(|_| full),
            filed_at: at.unwrap_or_default(),
            visit_id: full.then(|| "visit-1".into()),
            source: SourceDto {
                organization: Some("Clinic".into()),
                author: None,
                performer: full.then(|| "Dr. Ängström".into()),
                from_outside: full,
            },
            sensitive: if full { vec![Code::new("hiv")] } else { vec![] },
            value: full.then(|| "5.4 mmol/L".into()),
            reference_range: None,
            flag: full.then(|| Code::new("high")),
            abnormal: full,
            detail: full.then(|| RecordDetail::Observation(crate::detail::tests::result_detail(n))),
        }
    }

    /// `JsonOut` writes these types with serde; the OpenAPI schema comes from poem-openapi.
    /// Both must give the same JSON, field by field, or clients would see what the spec
    /// does not say.
    #[test]
    fn serde_and_poem_openapi_encode_the_record_responses_alike() {
        let page = RecordPage {
            records: vec![dto(1, true), dto(2, false)],
            next_cursor: Some("abc".into()),
        };
        assert_eq!(
            serde_json::to_value(&page).unwrap(),
            page.to_json().unwrap()
        );
        let last = RecordPage {
            records: vec![],
            next_cursor: None,
        };
        assert_eq!(
            serde_json::to_value(&last).unwrap(),
            last.to_json().unwrap()
        );

        let view = RecordViewDto {
            record: dto(3, true),
            related: vec![dto(4, false)],
        };
        assert_eq!(
            serde_json::to_value(&view).unwrap(),
            view.to_json().unwrap()
        );
        let trend = TrendDto {
            record_id: "a".into(),
            points: vec![
                TrendPoint {
                    record_id: "a".into(),
                    date: chrono::Utc.with_ymd_and_hms(2020, 1, 2, 3, 4, 5).single(),
                    value: Some(4.25),
                    unit: Some("mmol/L".into()),
                    flag: None,
                },
                TrendPoint {
                    record_id: "b".into(),
                    date: None,
                    value: None,
                    unit: None,
                    flag: Some("low".into()),
                },
            ],
        };
        assert_eq!(
            serde_json::to_value(&trend).unwrap(),
            trend.to_json().unwrap()
        );

        let summary = SummaryDto {
            patient: PatientHeader {
                id: "p".into(),
                given_name: "Ana".into(),
                family_name: "Silva".into(),
                birth_date: chrono::NaiveDate::from_ymd_opt(1980, 2, 29).unwrap_or_default(),
                mrn: "MRN1".into(),
            },
            held: vec![],
            recent_results: vec![dto(5, true)],
            active_medications: vec![dto(6, false)],
            active_problems: vec![],
            allergies: vec![],
            recent_visits: vec![],
            last_visit: chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single(),
            new_since_last_visit: vec![KindCount {
                kind: Code::new("observation"),
                label: "Lab results".into(),
                count: 3,
            }],
            counts: vec![],
        };
        assert_eq!(
            serde_json::to_value(&summary).unwrap(),
            summary.to_json().unwrap()
        );
    }
}

crate::redacted_debug!(ChartsFound, ChartSearchRequest, HeldRecords, HeldRecordDto);
