//! The front desk's page of one chart's guardians and proxies: record a parent or guardian
//! of a minor after checking documents, end a guardianship, and record a proxy for a patient
//! who cannot do it online (with the patient present). The domain's `ConsentService` decides
//! and audits everything.

use crate::account::with_status;
use crate::form::Problems;
use crate::front_desk::not_for_you;
use crate::session::{CheckedForm, NoFields, Refill, StaffMember, see_other};
use crate::sharing::{Choice, Typed, act_choices, choices, field};
use crate::{WebState, error_page, render};
use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, Data, Path, Query};
use poem::{Response, handler};
use salus_domain::consent::{
    ConsentError, GrantState, Grantee, GuardianError, GuardianRequest, ProxyInvitation,
};
use salus_domain::when;
use salus_domain::{GrantId, PatientId};
use serde::Deserialize;
use std::sync::Arc;

struct GuardianRow {
    id: String,
    who: String,
    since: String,
    until: String,
    status: &'static str,
    live: bool,
}

/// What the guardian form had typed.
#[derive(Default)]
struct GuardianTyped {
    email: String,
    relationship: String,
    note: String,
}

#[derive(Template)]
#[template(path = "staff_access.html")]
struct AccessPage<'a> {
    csrf: &'a str,
    patient_id: String,
    name: String,
    birth_date: String,
    mrn: String,
    /// Under 18: a guardian may be recorded.
    minor: bool,
    notice: Option<&'a str>,
    problems: Problems,
    guardians: Vec<GuardianRow>,
    g: GuardianTyped,
    /// The proxy form: as typed, and its checkboxes.
    typed: Typed,
    kinds: Vec<Choice>,
    labels: Vec<Choice>,
    acts: Vec<Choice>,
}

fn missing() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such patient in your organisation.",
    )
}

/// What a refusal of the guardian use cases answers when it is not about a field.
fn failed(e: GuardianError) -> Response {
    match e {
        GuardianError::Forbidden => not_for_you(),
        GuardianError::NotFound => missing(),
        GuardianError::Repo(r) => crate::unavailable("guardians failed", &r),
        other => error_page(StatusCode::BAD_REQUEST, "Not recorded", &other.to_string()),
    }
}

struct Said<'a> {
    notice: Option<&'a str>,
    problems: Problems,
    g: GuardianTyped,
    typed: Typed,
}

async fn page(
    state: &WebState,
    csrf: &CsrfToken,
    me: &crate::session::Acting,
    patient: PatientId,
    said: Said<'_>,
    status: StatusCode,
) -> Response {
    let salus_domain::consent::Guardians {
        chart,
        grants,
        minor,
    } = match state.consent.guardians_of(&me.actor, patient).await {
        Ok(v) => v,
        Err(e) => return failed(e),
    };
    let zone = match state.records.time_zone(&me.actor).await {
        Ok(z) => z,
        Err(e) => return crate::records::failure(e),
    };
    let guardians = grants
        .iter()
        .map(|v| {
            let g = &v.grant;
            let who = match &g.grantee {
                Grantee::Guardian {
                    email,
                    relationship,
                    ..
                } => match relationship {
                    Some(r) => format!("{} ({})", email.as_str(), r.as_str()),
                    None => email.as_str().to_owned(),
                },
                Grantee::Proxy { .. } | Grantee::ShareLink { .. } => String::new(),
            };
            GuardianRow {
                id: g.id.to_string(),
                who,
                since: when::day_of(g.made_at, zone),
                until: when::day_of(g.scope.valid_until - chrono::Duration::seconds(1), zone),
                status: match v.state {
                    GrantState::Active { .. } => "Active",
                    GrantState::Revoked { .. } => "Ended by the clinic",
                    GrantState::Expired => "Ended (came of age)",
                    GrantState::Pending { .. } => "Pending",
                },
                live: matches!(v.state, GrantState::Active { .. }),
            }
        })
        .collect();
    let (kinds, labels) = choices(&said.typed);
    let acts = act_choices(&said.typed);
    with_status(
        render(&AccessPage {
            csrf: &csrf.0,
            patient_id: chart.id.to_string(),
            name: chart.name.full(),
            birth_date: when::day(chart.birth_date),
            mrn: chart.mrn.as_str().to_owned(),
            minor,
            notice: said.notice,
            problems: said.problems,
            guardians,
            g: said.g,
            typed: said.typed,
            kinds,
            labels,
            acts,
        }),
        status,
    )
}

#[derive(Deserialize)]
pub(crate) struct Done {
    done: Option<String>,
}

/// The chart's guardians and the forms to record one or a proxy.
#[handler]
pub(crate) async fn access(
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(me): StaffMember,
    Path(id): Path<String>,
    Query(q): Query<Done>,
) -> Response {
    let Ok(patient) = PatientId::parse(&id) else {
        return missing();
    };
    let notice = match q.done.as_deref() {
        Some("guardian") => Some(
            "Guardian recorded. They can open the record now, until the patient turns 18; we emailed them.",
        ),
        Some("ended") => Some("Guardianship ended. Their next page is refused."),
        Some("proxy") => Some(
            "Invitation sent. It shows as recorded at the front desk; they see the records once they accept.",
        ),
        _ => None,
    };
    let said = Said {
        notice,
        problems: Problems::default(),
        g: GuardianTyped::default(),
        typed: Typed::default(),
    };
    page(&state, csrf, &me, patient, said, StatusCode::OK).await
}

#[derive(Deserialize)]
pub(crate) struct GuardianForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    relationship: String,
    #[serde(default)]
    note: String,
}

impl Refill for GuardianForm {}

/// Records a guardian of a minor.
#[handler]
pub(crate) async fn record_guardian(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(me): StaffMember,
    Path(id): Path<String>,
    CheckedForm(f): CheckedForm<GuardianForm>,
) -> Response {
    let Ok(patient) = PatientId::parse(&id) else {
        return missing();
    };
    let typed = GuardianTyped {
        email: f.email.clone(),
        relationship: f.relationship.clone(),
        note: f.note.clone(),
    };
    let again = |field: &'static str, message: String, typed: GuardianTyped| {
        let said = Said {
            notice: None,
            problems: Problems::one(field, message),
            g: typed,
            typed: Typed::default(),
        };
        page(&state, csrf, &me, patient, said, StatusCode::BAD_REQUEST)
    };
    let request = match GuardianRequest::from_fields(&f.email, &f.relationship, &f.note) {
        Ok(r) => r,
        Err(e) => {
            let at = if field(e) == "email" {
                "guardian_email"
            } else {
                "guardian_relationship"
            };
            return again(at, e.to_string(), typed).await;
        }
    };
    match state
        .consent
        .establish_guardian(&me.actor, patient, request, rid.get())
        .await
    {
        Ok(_) => see_other(&format!("/staff/patients/{patient}/access?done=guardian")),
        Err(e @ (GuardianError::NoAccount | GuardianError::NotAMinor)) => {
            again("guardian_email", e.to_string(), typed).await
        }
        Err(e) => failed(e),
    }
}

/// Ends a guardianship.
#[handler]
pub(crate) async fn end_guardian(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    StaffMember(me): StaffMember,
    Path((id, grant)): Path<(String, String)>,
    _form: CheckedForm<NoFields>,
) -> Response {
    let (Ok(patient), Ok(grant)) = (PatientId::parse(&id), GrantId::parse(&grant)) else {
        return missing();
    };
    match state
        .consent
        .end_guardianship(&me.actor, patient, grant, rid.get())
        .await
    {
        Ok(()) => see_other(&format!("/staff/patients/{patient}/access?done=ended")),
        Err(e) => failed(e),
    }
}

/// Records a proxy invitation for a patient who cannot do it online.
#[handler]
pub(crate) async fn record_proxy(
    rid: crate::RequestId,
    state: Data<&Arc<WebState>>,
    csrf: &CsrfToken,
    StaffMember(me): StaffMember,
    Path(id): Path<String>,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Response {
    let Ok(patient) = PatientId::parse(&id) else {
        return missing();
    };
    let typed = Typed::from_fields(fields);
    let again = |field: &'static str, message: String, typed: Typed| {
        let said = Said {
            notice: None,
            problems: Problems::one(field, message),
            g: GuardianTyped::default(),
            typed,
        };
        page(&state, csrf, &me, patient, said, StatusCode::BAD_REQUEST)
    };
    let invitation = typed.scope().and_then(|scope| {
        ProxyInvitation::from_fields(&typed.email, scope, &typed.relationship, &typed.note)
    });
    let inv = match invitation {
        Ok(i) => i,
        Err(e) => return again(field(e), e.to_string(), typed).await,
    };
    match state
        .consent
        .record_proxy_for(&me.actor, patient, inv, rid.get())
        .await
    {
        Ok(_) => see_other(&format!("/staff/patients/{patient}/access?done=proxy")),
        Err(ConsentError::Input(e)) => again(field(e), e.to_string(), typed).await,
        Err(ConsentError::NotFound) => missing(),
        Err(ConsentError::Repo(e)) => crate::unavailable("proxy failed", &e),
        Err(_) => not_for_you(),
    }
}
