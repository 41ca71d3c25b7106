//! Records and access-history entries in words, as every page shows them.

use super::*;

/// Who is looking, as the pages need it: the zone their times are shown in (their clinic's
/// or their organisation's) and when they signed in before (records that came online since
/// are marked new; staff get no marks).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Viewer {
    pub(crate) tz: Tz,
    pub(crate) new_after: Option<DateTime<Utc>>,
}

/// The zone a signed-in account's times are shown in: its clinic's (or organisation's),
/// UTC for an account connected to no chart yet.
pub(crate) async fn zone_of(
    state: &WebState,
    account: &salus_domain::account::Account,
) -> Result<Tz, Response> {
    match Actor::for_account(account) {
        Some(actor) => state.records.time_zone(&actor).await.map_err(failure),
        None => Ok(Tz::UTC),
    }
}

impl Viewer {
    /// The viewer of a page answered for `acting`.
    pub(crate) async fn of(state: &WebState, acting: &Acting) -> Result<Self, Response> {
        let tz = state
            .records
            .time_zone(&acting.actor)
            .await
            .map_err(failure)?;
        let new_after = match acting.actor {
            Actor::Staff { .. } => None,
            _ => acting.signed_in.previous_sign_in,
        };
        Ok(Self { tz, new_after })
    }

    /// The day of a time, or nothing: "4 Dec 2026".
    pub(crate) fn day(&self, t: Option<DateTime<Utc>>) -> String {
        t.map(|t| when::day_of(t, self.tz)).unwrap_or_default()
    }

    /// A time as a moment, or the day alone when it has no time of day.
    pub(crate) fn moment(&self, t: Option<DateTime<Utc>>) -> String {
        t.map(|t| when::clinical(t, self.tz)).unwrap_or_default()
    }

    /// Whether a record came online after the viewer's previous sign-in.
    fn is_new(&self, r: &ClinicalRecord) -> bool {
        match (self.new_after, r.meta.release) {
            (Some(after), salus_domain::record::ReleaseState::Released { at }) => at > after,
            _ => false,
        }
    }
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
    /// Online since the viewer last signed in.
    pub(crate) new: bool,
}

pub(super) fn row(s: &Shown<ClinicalRecord>, viewer: &Viewer) -> Row {
    let r = &s.item;
    let (value, range, flag) = r.body.result_line().unwrap_or_default();
    let (value, range) = (value.unwrap_or_default(), range.unwrap_or_default());
    let src = &r.meta.source;
    // Each name once: the author and the performer are often the same clinician.
    let mut parts: Vec<&str> = Vec::new();
    for name in [&src.organization, &src.author, &src.performer]
        .into_iter()
        .filter_map(|d| d.as_ref().map(|n| n.as_str()))
    {
        if !parts.contains(&name) {
            parts.push(name);
        }
    }
    Row {
        id: r.meta.id.to_string(),
        kind: r.kind().label(),
        title: r.body.title().to_owned(),
        date: viewer.day(r.body.effective_at()),
        status: r.body.status_phrase().to_owned(),
        value,
        range,
        flag: flag.map(|f| f.phrase().to_owned()).unwrap_or_default(),
        abnormal: flag.is_some_and(|f| f.is_abnormal()),
        source: parts.join(" · "),
        outside: src.from_outside,
        notice: s
            .notice
            .map(|l| l.iter().map(|x| x.label()).collect::<Vec<_>>().join(", ")),
        new: viewer.is_new(r),
    }
}

pub(crate) fn rows(v: &[Shown<ClinicalRecord>], viewer: &Viewer) -> Vec<Row> {
    v.iter().map(|s| row(s, viewer)).collect()
}

pub(super) fn details(
    r: &ClinicalRecord,
    viewer: &Viewer,
) -> (Vec<(String, String)>, Option<String>) {
    let day = |t| viewer.day(t);
    let mut d: Vec<(String, String)> = Vec::new();
    let mut details_of_parts: Vec<(String, String)> = Vec::new();
    let mut text = None;
    let mut push = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.trim().is_empty()) {
            d.push((k.to_owned(), v));
        }
    };
    match &r.body {
        RecordBody::Encounter(e) => {
            push("Type of visit", Some(e.class.phrase().to_owned()));
            push("Reason", e.reason.as_ref().map(|c| c.display().to_owned()));
            push("Started", Some(viewer.moment(e.period.start)));
            push("Ended", Some(viewer.moment(e.period.end)));
        }
        RecordBody::Observation(o) => {
            // Each part with its own value, normal range and flag.
            for part in o.parts() {
                let mut line = part.value.clone().unwrap_or_default();
                if let Some(range) = &part.range {
                    let _ = write!(line, " (normal {range})");
                }
                if let Some(flag) = part.flag.filter(|f| f.is_abnormal()) {
                    let _ = write!(line, ", {}", flag.phrase().to_lowercase());
                }
                details_of_parts.push((part.name, line));
            }
            push("Category", Some(o.category.phrase().to_owned()));
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
            push("Criticality", a.criticality.map(|c| c.phrase().to_owned()));
            for reaction in &a.reactions {
                let severity = reaction
                    .severity
                    .map(|s| format!(" ({})", s.phrase().to_lowercase()))
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
            push("Type", Some(n.note_type.phrase().to_owned()));
            text = Some(n.text.clone());
        }
    }
    details_of_parts.append(&mut d);
    (details_of_parts, text)
}

pub(super) struct HistoryRow {
    pub(super) when: String,
    pub(super) who: String,
    pub(super) what: String,
    pub(super) record: Option<String>,
    pub(super) outcome: &'static str,
    pub(super) refused: bool,
}

/// What an access-history entry did, in words, about `whose` record ("your", "their").
pub(crate) fn action_words(e: &AccessEntry, whose: &str) -> String {
    let kind = e
        .record_kind
        .map_or_else(|| format!("{whose} record"), |k| k.label().to_lowercase());
    match e.action.as_str() {
        "view_chart" if e.record_kind.is_some() => format!("Looked at the list of {kind}"),
        "view_chart" => format!("Looked at the overview of {whose} record"),
        "read" => format!("Opened one of {whose} {kind}"),
        "export" => format!("Downloaded {whose} records"),
        "export_fhir" => format!("Downloaded {whose} records (FHIR file)"),
        "export_ips" => format!("Downloaded {whose} patient summary (IPS)"),
        "export_pdf" if e.record_kind.is_some() => format!("Downloaded a PDF of {whose} {kind}"),
        "export_pdf" => format!("Downloaded a PDF of {whose} records"),
        "create" => format!("Added to {whose} {kind}"),
        "release" => format!("Released one of {whose} {kind} to you"),
        "view_access_history" => "Looked at this access history".to_owned(),
        "view_demographics" => {
            format!("Looked at {whose} name and date of birth (identity check)")
        }
        "read_messages" => format!("Read {whose} messages"),
        "message" => format!("Wrote in {whose} messages"),
        "request_refill" => {
            format!("Asked for a refill of one of {whose} medications, or cancelled one")
        }
        "decide_refill" => format!("Answered a refill request for one of {whose} medications"),
        "view_appointments" => format!("Looked at {whose} appointments"),
        "book" => format!("Booked one of {whose} appointments"),
        "reschedule" => format!("Moved one of {whose} appointments"),
        "cancel_appointment" => format!("Cancelled one of {whose} appointments"),
        "join_waitlist" => format!(
            "Asked to be told of an earlier time for one of {whose} appointments, or stopped"
        ),
        "view_bills" => format!("Looked at {whose} bills"),
        "pay_bill" => format!("Paid one of {whose} bills, or tried to"),
        "post_statement" => format!("Posted a statement to {whose} account"),
        "adjust_balance" => format!("Adjusted {whose} balance"),
        "refund_payment" => format!("Refunded one of {whose} payments"),
        "start_payment_plan" => format!("Set up or stopped a payment plan for {whose} balance"),
        "plan_instalment" => format!("Charged an instalment of {whose} payment plan"),
        other => other.replace('_', " "),
    }
}

pub(super) fn history_row(
    me: Option<salus_domain::AccountId>,
    e: &AccessEntry,
    viewer: &Viewer,
) -> HistoryRow {
    let who = match e.who(me) {
        Who::You => "You".to_owned(),
        Who::ShareLink => "Someone with your share link".to_owned(),
        Who::Named(name) => match (e.accessor.kind.as_str(), e.accessor.role) {
            ("staff", Some(role)) => format!("{name} ({})", role.code().replace('_', " ")),
            ("proxy", _) => format!("{name} (your proxy)"),
            _ => name,
        },
    };
    let what = action_words(e, "your");
    HistoryRow {
        when: when::moment(e.at, viewer.tz),
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
