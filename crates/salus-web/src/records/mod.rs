//! The patient's record pages: home, one list per kind, one record (with a visit's records,
//! a report's results, a result's trend as a chart and a table), and the access history.
//! Every page asks the domain's `RecordsService`, which authorises and audits.

use crate::session::Acting;
use crate::{WebState, error_page, render};
use askama::Template;
use chrono::{DateTime, Utc};
use poem::http::StatusCode;
use poem::web::{Data, Path, Query};
use poem::{Response, handler};
use salus_domain::RecordId;
use salus_domain::access::Actor;
use salus_domain::audit::{AccessEntry, Who};
use salus_domain::chart::{ListFilter, ListRequest, ReadError, Shown};
use salus_domain::chrono_tz::Tz;
use salus_domain::record::{
    ClinicalRecord, Cursor, ObservationValue, RecordBody, RecordKind, ReferenceRange, human_unit,
};
use salus_domain::when;
use serde::Deserialize;
use std::fmt::Write as _;
use std::sync::Arc;

mod present;
mod trend;

use present::{HistoryRow, details, history_row, row};
pub(crate) use present::{Row, Viewer, action_words, rows, zone_of};
use trend::{Series, trend_svg};

/// The URL segment of each list, in plain words.
const LISTS: [(RecordKind, &str); 9] = [
    (RecordKind::Encounter, "visits"),
    (RecordKind::Observation, "results"),
    (RecordKind::DiagnosticReport, "reports"),
    (RecordKind::Medication, "medications"),
    (RecordKind::Immunization, "immunizations"),
    (RecordKind::Problem, "problems"),
    (RecordKind::Allergy, "allergies"),
    (RecordKind::Procedure, "procedures"),
    (RecordKind::ClinicalNote, "notes"),
];

pub(crate) fn slug_of(kind: RecordKind) -> &'static str {
    LISTS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("results", |(_, s)| s)
}

fn kind_of(slug: &str) -> Option<RecordKind> {
    LISTS.iter().find(|(_, s)| *s == slug).map(|(k, _)| *k)
}

pub(crate) fn failure(e: ReadError) -> Response {
    match e {
        ReadError::NotFound => error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such record.",
        ),
        ReadError::NoChart => error_page(
            StatusCode::FORBIDDEN,
            "Not connected yet",
            &salus_domain::chart::ReadError::NoChart.to_string(),
        ),
        ReadError::AuditUnavailable => crate::unavailable("audit log unavailable", &e),
        ReadError::Repo(r) => crate::unavailable("records read failed", &r),
    }
}

struct KindLink {
    slug: &'static str,
    label: &'static str,
    count: u64,
}

#[derive(Template)]
#[template(path = "records_home.html")]
struct HomePage {
    results: Vec<Row>,
    medications: Vec<Row>,
    problems: Vec<Row>,
    allergies: Vec<Row>,
    visits: Vec<Row>,
    last_visit: String,
    new_since: Vec<KindLink>,
    lists: Vec<KindLink>,
    /// Someone else's record, opened under their permission: their name.
    someone_else: Option<String>,
}

#[handler]
pub(crate) async fn home(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    acting: Acting,
) -> Response {
    let viewer = match Viewer::of(&state, &acting).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match state.records.summary(&acting.actor, None, rid.get()).await {
        Ok(s) => {
            let link = |(kind, n): (&RecordKind, &u64)| KindLink {
                slug: slug_of(*kind),
                label: kind.label(),
                count: *n,
            };
            render(&HomePage {
                results: rows(&s.recent_results, &viewer),
                medications: rows(&s.active_medications, &viewer),
                problems: rows(&s.active_problems, &viewer),
                allergies: rows(&s.allergies, &viewer),
                visits: rows(&s.recent_visits, &viewer),
                last_visit: viewer.day(s.last_visit),
                new_since: s.new_since_last_visit.iter().map(link).collect(),
                someone_else: matches!(acting.actor, Actor::Proxy { .. })
                    .then(|| s.patient.name.full()),
                lists: LISTS
                    .iter()
                    .filter(|(k, _)| s.kinds.contains(k))
                    .map(|(k, slug)| KindLink {
                        slug,
                        label: k.label(),
                        count: s.counts.get(k).copied().unwrap_or(0),
                    })
                    .collect(),
            })
        }
        Err(e) => failure(e),
    }
}

struct StatusOption {
    code: &'static str,
    /// What the patient reads for it.
    phrase: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "records_list.html")]
struct ListPage {
    slug: &'static str,
    label: &'static str,
    records: Vec<Row>,
    from: String,
    until: String,
    q: String,
    statuses: Vec<StatusOption>,
    message: Option<&'static str>,
    /// The query string of the next page, when there is one.
    next: Option<String>,
    is_results: bool,
}

/// A lab report (order) and the latest values that came in it.
struct GroupView {
    report: Option<Row>,
    results: Vec<Row>,
}

#[derive(Template)]
#[template(path = "results_latest.html")]
struct LatestPage {
    labs: Vec<GroupView>,
    vitals: Vec<Row>,
    other: Vec<Row>,
    scanned: usize,
    limit: usize,
}

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    /// Every result in a list (the results page otherwise shows the latest of each test).
    all: Option<String>,
    from: Option<String>,
    until: Option<String>,
    q: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[handler]
pub(crate) async fn list(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    acting: Acting,
    Path(slug): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    let viewer = match Viewer::of(&state, &acting).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let actor = acting.actor;
    let Some(kind) = kind_of(&slug) else {
        return error_page(StatusCode::NOT_FOUND, "Not found", "There is no such list.");
    };
    let slug = slug_of(kind);
    let plain = [&q.all, &q.from, &q.until, &q.q, &q.status, &q.cursor]
        .iter()
        .all(|v| v.is_none());
    if kind == RecordKind::Observation && plain {
        return match state.records.latest_results(&actor, None, rid.get()).await {
            Ok(l) => render(&LatestPage {
                labs: l
                    .labs
                    .iter()
                    .map(|g| GroupView {
                        report: g.report.as_ref().map(|r| row(r, &viewer)),
                        results: rows(&g.results, &viewer),
                    })
                    .collect(),
                vitals: rows(&l.vitals, &viewer),
                other: rows(&l.other, &viewer),
                scanned: l.scanned,
                limit: salus_domain::chart::LATEST_SCAN,
            }),
            Err(e) => failure(e),
        };
    }
    let mut page = ListPage {
        slug,
        label: kind.label(),
        records: Vec::new(),
        from: q.from.clone().unwrap_or_default(),
        until: q.until.clone().unwrap_or_default(),
        q: q.q.clone().unwrap_or_default(),
        statuses: kind
            .status_codes()
            .into_iter()
            .map(|code| StatusOption {
                code,
                phrase: salus_domain::words::status_phrase(kind, code).unwrap_or(code),
                selected: q.status.as_deref() == Some(code),
            })
            .collect(),
        message: None,
        next: None,
        is_results: kind == RecordKind::Observation,
    };
    let filter = ListFilter::parse(
        kind,
        q.from.as_deref(),
        q.until.as_deref(),
        q.q.clone(),
        q.status.as_deref(),
    );
    let after = q
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(Cursor::from_token);
    let (filter, after): (ListFilter, Option<Cursor>) = match (filter, after) {
        (Ok(f), None) => (f, None),
        (Ok(f), Some(Some(c))) => (f, Some(c)),
        (Err(e), _) => {
            page.message = Some(match e {
                salus_domain::chart::FilterError::Date => {
                    "Check the dates (YYYY-MM-DD) and try again."
                }
                salus_domain::chart::FilterError::DateRange => {
                    "The start date is after the end date. Check the dates and try again."
                }
                salus_domain::chart::FilterError::TextTooLong => {
                    "The search text is too long. Use at most 200 characters."
                }
                salus_domain::chart::FilterError::Status => "Choose a status from the list.",
            });
            let mut r = render(&page);
            r.set_status(StatusCode::BAD_REQUEST);
            return r;
        }
        (Ok(_), Some(None)) => {
            page.message = Some("This page link is not valid; start again from the first page.");
            let mut r = render(&page);
            r.set_status(StatusCode::BAD_REQUEST);
            return r;
        }
    };
    let request = ListRequest {
        patient: None,
        kind,
        filter,
        after,
        limit: 25,
    };
    match state.records.list(&actor, request, rid.get()).await {
        Ok(result) => {
            page.records = rows(&result.items, &viewer);
            page.next = result.next.map(|c| {
                let mut qs = format!("cursor={}", c.to_token());
                for (k, v) in [
                    ("from", &q.from),
                    ("until", &q.until),
                    ("q", &q.q),
                    ("status", &q.status),
                ] {
                    if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                        let _ = write!(qs, "&{k}={}", encode(v));
                    }
                }
                qs
            });
            render(&page)
        }
        Err(e) => failure(e),
    }
}

/// One point of a trend: when, the value, and whether it was abnormal.
struct Point {
    date: String,
    value: String,
    flag: String,
    abnormal: bool,
    current: bool,
}

/// The lines of a result's trend chart: its value over time, or for a result in parts
/// (a blood pressure) each part over time, judged by its own range.
fn trend_series(r: &ClinicalRecord, trend: &[ClinicalRecord]) -> Vec<Series> {
    let RecordBody::Observation(this) = &r.body else {
        return Vec::new();
    };
    let observations = || {
        trend.iter().filter_map(|t| match &t.body {
            RecordBody::Observation(o) => Some((t.sort_time(), o)),
            _ => None,
        })
    };
    if this.value.is_none() && !this.components.is_empty() {
        return this
            .components
            .iter()
            .map(|part| Series {
                label: part.code.display().to_owned(),
                points: observations()
                    .filter_map(|(at, o)| {
                        let (i, c) = o
                            .components
                            .iter()
                            .enumerate()
                            .find(|(_, c)| c.code == part.code)?;
                        let Some(ObservationValue::Quantity(q)) = &c.value else {
                            return None;
                        };
                        let flag = o.parts().get(i).and_then(|p| p.flag);
                        Some((at, q.value, flag.is_some_and(|f| f.is_abnormal())))
                    })
                    .collect(),
                range: part.reference_range.clone(),
            })
            .collect();
    }
    vec![Series {
        label: this.code.display().to_owned(),
        points: observations()
            .filter_map(|(at, o)| {
                let (v, _) = o.numeric()?;
                Some((at, v, o.effective_flag().is_some_and(|f| f.is_abnormal())))
            })
            .collect(),
        range: this.reference_range.clone(),
    }]
}

#[derive(Template)]
#[template(path = "record.html")]
struct RecordPage {
    record: Row,
    slug: &'static str,
    /// Lines of the record's own details (label, value).
    details: Vec<(String, String)>,
    /// A note's text (escaped by the template; line breaks kept by CSS).
    text: Option<String>,
    related_title: &'static str,
    related: Vec<Row>,
    trend_svg: Option<String>,
    trend: Vec<Point>,
    unit: String,
    visit: Option<String>,
    /// For staff: the chart to go back to.
    staff_chart: Option<String>,
    /// A medication's refill requests, for whoever may ask for refills of the chart.
    refills: Option<Vec<crate::refills::RefillRow>>,
    /// An active medication with no request waiting: the form's link.
    can_ask_refill: bool,
    /// A visit's appointment, when it was booked: (id, when).
    appointment: Option<(String, String)>,
}

#[handler]
pub(crate) async fn record(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    acting: Acting,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = RecordId::parse(&id) else {
        return failure(ReadError::NotFound);
    };
    let viewer = match Viewer::of(&state, &acting).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let actor = acting.actor;
    let view = match state.records.view_with_trend(&actor, id, rid.get()).await {
        Ok(v) => v,
        Err(e) => return failure(e),
    };
    let r = &view.record.item;
    let (details, text) = details(r, &viewer);
    let related_title = match &r.body {
        RecordBody::Encounter(_) => "From this visit",
        RecordBody::DiagnosticReport(_) => "Results in this report",
        RecordBody::Observation(_) => "Part of",
        _ => "Related",
    };
    let mut unit = String::new();
    if let RecordBody::Observation(o) = &r.body {
        unit = match (o.numeric(), o.components.first()) {
            (Some((_, u)), _) => u.map(|u| human_unit(u).into_owned()).unwrap_or_default(),
            (None, Some(c)) => match &c.value {
                Some(ObservationValue::Quantity(q)) => q
                    .unit
                    .as_deref()
                    .map(|u| human_unit(u).into_owned())
                    .unwrap_or_default(),
                _ => String::new(),
            },
            (None, None) => String::new(),
        };
    }
    let series = trend_series(r, &view.trend);
    let trend_svg = series
        .iter()
        .any(|s| s.points.len() >= 2)
        .then(|| trend_svg(&series, viewer.tz));
    let trend = view
        .trend
        .iter()
        .map(|t| {
            let (value, flag) = match &t.body {
                RecordBody::Observation(o) => (o.reading().unwrap_or_default(), o.effective_flag()),
                _ => (String::new(), None),
            };
            Point {
                date: viewer.day(t.body.effective_at()),
                value,
                flag: flag.map(|f| f.phrase().to_owned()).unwrap_or_default(),
                abnormal: flag.is_some_and(|f| f.is_abnormal()),
                current: t.meta.id == r.meta.id,
            }
        })
        .collect::<Vec<_>>();
    let refills = match &r.body {
        RecordBody::Medication(_) => match state.messaging.refills_of(&actor, r.meta.id).await {
            Ok(refills) => refills,
            Err(salus_domain::messaging::MessagingError::Repo(e)) => {
                return crate::unavailable("refills failed", &e);
            }
            Err(_) => None,
        },
        _ => None,
    };
    let appointment = match &r.body {
        RecordBody::Encounter(e) => match e.period.start {
            Some(start) => match state
                .scheduling
                .appointment_at(&actor, r.meta.patient_id, start, e.period.end, rid.get())
                .await
            {
                Ok(found) => found.map(|a| {
                    (
                        a.id.to_string(),
                        salus_domain::when::moment(a.time.start, viewer.tz),
                    )
                }),
                Err(salus_domain::scheduling::SchedulingError::Repo(e)) => {
                    return crate::unavailable("appointment lookup failed", &e);
                }
                Err(_) => None,
            },
            None => None,
        },
        _ => None,
    };
    let can_ask_refill = matches!(&r.body, RecordBody::Medication(m)
        if m.status == salus_domain::record::MedicationStatus::Active)
        && refills.as_ref().is_some_and(|all| {
            all.iter()
                .all(|q| q.state != salus_domain::messaging::RefillState::Requested)
        });
    render(&RecordPage {
        refills: refills.map(|all| {
            all.iter()
                .map(|q| crate::refills::refill_row(q, viewer.tz, String::new()))
                .collect()
        }),
        can_ask_refill,
        appointment,
        record: row(&view.record, &viewer),
        slug: slug_of(r.kind()),
        details,
        text,
        related_title,
        related: rows(&view.related, &viewer),
        trend_svg,
        trend: if view.trend.len() >= 2 {
            trend
        } else {
            Vec::new()
        },
        unit,
        visit: r.meta.encounter_id.map(|e| e.to_string()),
        staff_chart: matches!(actor, Actor::Staff { .. }).then(|| r.meta.patient_id.to_string()),
    })
}

#[derive(Template)]
#[template(path = "access_history.html")]
struct HistoryPage {
    entries: Vec<HistoryRow>,
    older: Option<i64>,
}

#[derive(Deserialize)]
pub(crate) struct HistoryQuery {
    before: Option<i64>,
}

#[handler]
pub(crate) async fn history(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    acting: Acting,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let viewer = match Viewer::of(&state, &acting).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let actor = acting.actor;
    match state
        .records
        .access_history(&actor, q.before, 50, rid.get())
        .await
    {
        Ok(entries) => {
            let me = actor.account();
            // The patient's grants, to name who used them: a share link by whom it was for,
            // a guardian as such.
            let grants: std::collections::BTreeMap<_, _> = match state.consent.grants(&actor).await
            {
                Ok(grants) => grants
                    .into_iter()
                    .map(|v| (v.grant.id, v.grant.grantee))
                    .collect(),
                Err(salus_domain::consent::ConsentError::Repo(e)) => {
                    return crate::unavailable("grants failed", &e);
                }
                Err(_) => std::collections::BTreeMap::new(),
            };
            render(&HistoryPage {
                older: (entries.len() == 50)
                    .then(|| entries.last().map(|e| e.seq))
                    .flatten(),
                entries: entries
                    .iter()
                    .map(|e| {
                        use salus_domain::consent::Grantee;
                        let mut row = history_row(me, e, &viewer);
                        match e.accessor.grant.and_then(|g| grants.get(&g)) {
                            Some(Grantee::ShareLink {
                                recipient: Some(r), ..
                            }) => {
                                row.who =
                                    format!("Someone with your share link for {}", r.as_str());
                            }
                            Some(Grantee::Guardian { .. }) => {
                                row.who = row.who.replace("(your proxy)", "(your guardian)");
                            }
                            _ => {}
                        }
                        row
                    })
                    .collect(),
            })
        }
        Err(e) => failure(e),
    }
}
