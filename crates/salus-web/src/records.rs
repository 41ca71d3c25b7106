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
use salus_domain::record::{
    ClinicalRecord, Cursor, ObservationValue, RecordBody, RecordKind, ReferenceRange,
};
use serde::Deserialize;
use std::fmt::Write as _;
use std::sync::Arc;

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

fn slug_of(kind: RecordKind) -> &'static str {
    LISTS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("results", |(_, s)| s)
}

fn kind_of(slug: &str) -> Option<RecordKind> {
    LISTS.iter().find(|(_, s)| *s == slug).map(|(k, _)| *k)
}

fn day(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// A record as every page shows it.
pub(crate) struct Row {
    pub(crate) id: String,
    pub(crate) kind: &'static str,
    pub(crate) title: String,
    pub(crate) date: String,
    pub(crate) status: String,
    pub(crate) value: String,
    pub(crate) range: String,
    pub(crate) flag: String,
    pub(crate) abnormal: bool,
    pub(crate) source: String,
    pub(crate) outside: bool,
    /// Words for the sensitivity notice, when there is one.
    pub(crate) notice: Option<String>,
}

fn row(s: &Shown<ClinicalRecord>) -> Row {
    let r = &s.item;
    let (value, range, flag) = r.body.result_line().unwrap_or_default();
    let (value, range) = (value.unwrap_or_default(), range.unwrap_or_default());
    let src = &r.meta.source;
    let parts: Vec<&str> = [&src.organization, &src.author, &src.performer]
        .into_iter()
        .filter_map(|d| d.as_ref().map(|n| n.as_str()))
        .collect();
    Row {
        id: r.meta.id.to_string(),
        kind: r.kind().label(),
        title: r.body.title().to_owned(),
        date: day(r.body.effective_at()),
        status: r.body.status().replace('_', " "),
        value,
        range,
        flag: flag.map(|f| f.code().replace('_', " ")).unwrap_or_default(),
        abnormal: flag.is_some_and(|f| f.is_abnormal()),
        source: parts.join(" · "),
        outside: src.from_outside,
        notice: s
            .notice
            .map(|l| l.iter().map(|x| x.label()).collect::<Vec<_>>().join(", ")),
    }
}

pub(crate) fn rows(v: &[Shown<ClinicalRecord>]) -> Vec<Row> {
    v.iter().map(row).collect()
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
            "Your account is not connected to a medical record yet.",
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
}

#[handler]
pub(crate) async fn home(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    Acting { actor, .. }: Acting,
) -> Response {
    match state.records.summary(&actor, None, rid.get()).await {
        Ok(s) => {
            let link = |(kind, n): (&RecordKind, &u64)| KindLink {
                slug: slug_of(*kind),
                label: kind.label(),
                count: *n,
            };
            render(&HomePage {
                results: rows(&s.recent_results),
                medications: rows(&s.active_medications),
                problems: rows(&s.active_problems),
                allergies: rows(&s.allergies),
                visits: rows(&s.recent_visits),
                last_visit: day(s.last_visit),
                new_since: s.new_since_last_visit.iter().map(link).collect(),
                lists: LISTS
                    .iter()
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

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
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
    Acting { actor, .. }: Acting,
    Path(slug): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    let Some(kind) = kind_of(&slug) else {
        return error_page(StatusCode::NOT_FOUND, "Not found", "There is no such list.");
    };
    let slug = slug_of(kind);
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
            page.records = rows(&result.items);
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

#[derive(Template)]
#[template(path = "record.html")]
struct RecordPage {
    record: Row,
    slug: &'static str,
    /// Lines of the record's own details (label, value).
    details: Vec<(&'static str, String)>,
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
}

fn details(r: &ClinicalRecord) -> (Vec<(&'static str, String)>, Option<String>) {
    let mut d = Vec::new();
    let mut text = None;
    let mut push = |k: &'static str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.trim().is_empty()) {
            d.push((k, v));
        }
    };
    match &r.body {
        RecordBody::Encounter(e) => {
            push("Type of visit", Some(e.class.code().replace('_', " ")));
            push("Reason", e.reason.as_ref().map(|c| c.display().to_owned()));
            push(
                "Started",
                e.period
                    .start
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string()),
            );
            push(
                "Ended",
                e.period.end.map(|t| t.format("%Y-%m-%d %H:%M").to_string()),
            );
        }
        RecordBody::Observation(o) => {
            for c in &o.components {
                push(
                    "Part",
                    Some(format!(
                        "{}: {}",
                        c.code.display(),
                        c.value
                            .as_ref()
                            .map(ObservationValue::text)
                            .unwrap_or_default()
                    )),
                );
            }
            push("Category", Some(o.category.code().replace('_', " ")));
        }
        RecordBody::DiagnosticReport(rep) => {
            push("Conclusion", rep.conclusion.clone());
        }
        RecordBody::Medication(m) => {
            push("Instructions", m.dosage.clone());
            push("Prescribed", day(m.authored_on).into());
            push("Until", day(m.period.end).into());
        }
        RecordBody::Immunization(i) => {
            push("Given", day(i.occurred_at).into());
            push("Lot number", i.lot_number.clone());
        }
        RecordBody::Problem(p) => {
            push("Since", day(p.onset).into());
            push("Resolved", day(p.abatement).into());
        }
        RecordBody::Allergy(a) => {
            push(
                "Criticality",
                a.criticality.map(|c| c.code().replace('_', " ")),
            );
            for reaction in &a.reactions {
                let severity = reaction
                    .severity
                    .map(|s| format!(" ({})", s.code()))
                    .unwrap_or_default();
                push(
                    "Reaction",
                    Some(format!("{}{severity}", reaction.manifestation.display())),
                );
            }
        }
        RecordBody::Procedure(p) => {
            push("Performed", day(p.performed.start).into());
        }
        RecordBody::ClinicalNote(n) => {
            push("Type", Some(n.note_type.code().replace('_', " ")));
            text = Some(n.text.clone());
        }
    }
    (d, text)
}

/// A line chart of a result over time: server-rendered SVG, the normal range as a band,
/// abnormal values marked. The page also shows the same points as a table.
fn trend_svg(points: &[(DateTime<Utc>, f64, bool)], range: Option<&ReferenceRange>) -> String {
    const W: f64 = 640.0;
    const H: f64 = 240.0;
    const PAD_L: f64 = 56.0;
    const PAD_R: f64 = 16.0;
    const PAD_T: f64 = 16.0;
    const PAD_B: f64 = 40.0;
    let mut lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let mut hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    if let Some(r) = range {
        for b in [r.low, r.high].into_iter().flatten() {
            lo = lo.min(b);
            hi = hi.max(b);
        }
    }
    if (hi - lo).abs() < f64::EPSILON {
        lo -= 1.0;
        hi += 1.0;
    }
    let margin = (hi - lo) * 0.08;
    let (lo, hi) = (lo - margin, hi + margin);
    let t0 = points.first().map_or(0, |p| p.0.timestamp()) as f64;
    let t1 = points.last().map_or(1, |p| p.0.timestamp()) as f64;
    let span = (t1 - t0).max(1.0);
    let x = |t: DateTime<Utc>| {
        if points.len() == 1 {
            PAD_L + (W - PAD_L - PAD_R) / 2.0
        } else {
            PAD_L + (t.timestamp() as f64 - t0) / span * (W - PAD_L - PAD_R)
        }
    };
    let y = |v: f64| PAD_T + (hi - v) / (hi - lo) * (H - PAD_T - PAD_B);
    let mut svg = format!(
        "<svg class=\"trend\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"trend-title\" xmlns=\"http://www.w3.org/2000/svg\"><title id=\"trend-title\">Values over time; the same values are in the table below</title>"
    );
    if let Some(r) = range {
        let top = r.high.map_or(PAD_T, y);
        let bottom = r.low.map_or(H - PAD_B, y);
        let _ = write!(
            svg,
            "<rect class=\"normal\" x=\"{PAD_L}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>Normal range</title></rect>",
            W - PAD_L - PAD_R,
            (bottom - top).max(0.0)
        );
    }
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{PAD_L}\" y1=\"{PAD_T}\" x2=\"{PAD_L}\" y2=\"{:.1}\"/><line class=\"axis\" x1=\"{PAD_L}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>",
        H - PAD_B,
        H - PAD_B,
        W - PAD_R,
        H - PAD_B
    );
    for v in [lo + margin, hi - margin] {
        let _ = write!(
            svg,
            "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            PAD_L - 6.0,
            y(v) + 4.0,
            (v * 100.0).round() / 100.0
        );
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(
            svg,
            "<text class=\"tick\" x=\"{PAD_L}\" y=\"{:.1}\">{}</text><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            H - PAD_B + 18.0,
            first.0.format("%Y-%m-%d"),
            W - PAD_R,
            H - PAD_B + 18.0,
            last.0.format("%Y-%m-%d")
        );
    }
    let line: Vec<String> = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1)))
        .collect();
    let _ = write!(
        svg,
        "<polyline class=\"line\" points=\"{}\"/>",
        line.join(" ")
    );
    for p in points {
        let _ = write!(
            svg,
            "<circle class=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\"><title>{}: {}</title></circle>",
            if p.2 { "point abnormal" } else { "point" },
            x(p.0),
            y(p.1),
            p.0.format("%Y-%m-%d"),
            p.1
        );
    }
    svg.push_str("</svg>");
    svg
}

#[handler]
pub(crate) async fn record(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    Acting { actor, .. }: Acting,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = RecordId::parse(&id) else {
        return failure(ReadError::NotFound);
    };
    let view = match state.records.view(&actor, id, rid.get()).await {
        Ok(v) => v,
        Err(e) => return failure(e),
    };
    let r = &view.record.item;
    let (details, text) = details(r);
    let related_title = match &r.body {
        RecordBody::Encounter(_) => "From this visit",
        RecordBody::DiagnosticReport(_) => "Results in this report",
        RecordBody::Observation(_) => "Part of",
        _ => "Related",
    };
    let mut unit = String::new();
    let mut range = None;
    if let RecordBody::Observation(o) = &r.body {
        unit = o
            .numeric()
            .and_then(|(_, u)| u)
            .unwrap_or_default()
            .to_owned();
        range = o.reference_range.clone();
    }
    let numeric: Vec<(DateTime<Utc>, f64, bool, RecordId)> = view
        .trend
        .iter()
        .filter_map(|t| match &t.body {
            RecordBody::Observation(o) => Some((
                t.sort_time(),
                o.numeric()?.0,
                o.effective_flag().is_some_and(|f| f.is_abnormal()),
                t.meta.id,
            )),
            _ => None,
        })
        .collect();
    let trend_svg = (numeric.len() >= 2).then(|| {
        let pts: Vec<_> = numeric.iter().map(|p| (p.0, p.1, p.2)).collect();
        trend_svg(&pts, range.as_ref())
    });
    let trend = view
        .trend
        .iter()
        .map(|t| {
            let (value, flag) = match &t.body {
                RecordBody::Observation(o) => (
                    o.value
                        .as_ref()
                        .map(ObservationValue::text)
                        .unwrap_or_default(),
                    o.effective_flag(),
                ),
                _ => (String::new(), None),
            };
            Point {
                date: day(t.body.effective_at()),
                value,
                flag: flag.map(|f| f.code().replace('_', " ")).unwrap_or_default(),
                abnormal: flag.is_some_and(|f| f.is_abnormal()),
                current: t.meta.id == r.meta.id,
            }
        })
        .collect::<Vec<_>>();
    render(&RecordPage {
        record: row(&view.record),
        slug: slug_of(r.kind()),
        details,
        text,
        related_title,
        related: rows(&view.related),
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

struct HistoryRow {
    when: String,
    who: String,
    what: String,
    record: Option<String>,
    outcome: &'static str,
    refused: bool,
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

fn history_row(me: Option<salus_domain::AccountId>, e: &AccessEntry) -> HistoryRow {
    let who = match e.who(me) {
        Who::You => "You".to_owned(),
        Who::ShareLink => "Someone with a share link".to_owned(),
        Who::Named(name) => match (e.accessor.kind.as_str(), e.accessor.role) {
            ("staff", Some(role)) => format!("{name} ({})", role.code().replace('_', " ")),
            ("proxy", _) => format!("{name} (on your behalf)"),
            _ => name,
        },
    };
    let kind = e
        .record_kind
        .map(RecordKind::label)
        .unwrap_or("your record");
    let what = match e.action.as_str() {
        "view_chart" if e.record_kind.is_some() => {
            format!("Looked at the list of {}", kind.to_lowercase())
        }
        "view_chart" => "Looked at the overview of your record".to_owned(),
        "read" => format!("Opened one of your {}", kind.to_lowercase()),
        "export" => "Downloaded your records".to_owned(),
        "export_fhir" => "Downloaded your records (FHIR file)".to_owned(),
        "export_ips" => "Downloaded your patient summary (IPS)".to_owned(),
        "export_pdf" if e.record_kind.is_some() => {
            format!("Downloaded a PDF of your {}", kind.to_lowercase())
        }
        "export_pdf" => "Downloaded a PDF of your records".to_owned(),
        "create" => format!("Added to your {}", kind.to_lowercase()),
        "release" => format!("Released one of your {} to you", kind.to_lowercase()),
        "view_access_history" => "Looked at this access history".to_owned(),
        "view_demographics" => "Looked at your name and date of birth (identity check)".to_owned(),
        other => other.replace('_', " "),
    };
    HistoryRow {
        when: e.at.format("%Y-%m-%d %H:%M UTC").to_string(),
        who,
        what,
        record: e
            .record
            .filter(|_| e.outcome == salus_domain::audit::Outcome::Allowed)
            .map(|r| r.to_string()),
        outcome: match e.outcome {
            salus_domain::audit::Outcome::Allowed => "Allowed",
            salus_domain::audit::Outcome::Denied => "Refused",
            salus_domain::audit::Outcome::NotFound => "Nothing found",
        },
        refused: e.outcome != salus_domain::audit::Outcome::Allowed,
    }
}

#[handler]
pub(crate) async fn history(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    Acting { actor, .. }: Acting,
    Query(q): Query<HistoryQuery>,
) -> Response {
    match state
        .records
        .access_history(&actor, q.before, 50, rid.get())
        .await
    {
        Ok(entries) => {
            let me = actor.account();
            render(&HistoryPage {
                older: (entries.len() == 50)
                    .then(|| entries.last().map(|e| e.seq))
                    .flatten(),
                entries: entries.iter().map(|e| history_row(me, e)).collect(),
            })
        }
        Err(e) => failure(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trend_chart_places_every_point_and_the_normal_range() {
        let t = |d: i64| DateTime::from_timestamp(1_700_000_000 + d * 86_400, 0).unwrap();
        let svg = trend_svg(
            &[(t(0), 5.0, false), (t(30), 7.5, true), (t(60), 6.0, false)],
            Some(&ReferenceRange {
                low: Some(4.0),
                high: Some(6.5),
                text: None,
            }),
        );
        assert_eq!(svg.matches("<circle").count(), 3);
        assert_eq!(svg.matches("point abnormal").count(), 1);
        assert!(svg.contains("<rect class=\"normal\""));
        assert!(svg.contains("<title>2023-12-14: 7.5</title>"), "{svg}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }
}
