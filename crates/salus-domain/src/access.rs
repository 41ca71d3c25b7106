//! Who may do what with which chart or record: the one access decision of Salus.
//!
//! **Invariant:** every use case that touches health data asks [`decide`] and nothing else;
//! the API and the pages never decide access themselves.
//! **Invariant:** a refusal is indistinguishable from absence ("not yours = not found"):
//! callers answer [`Decision::Deny`] exactly as a missing id.
//!
//! The rules, in words:
//! - A patient sees their own chart, and of it only records released online by now. Records
//!   with sensitivity labels are shown behind a short notice.
//! - Staff act only within their own organisation. Clinicians read every record of their
//!   organisation's charts (held ones too), file new results and notes, and release held
//!   records. Front desk, billing and administrators do not read clinical records.
//! - A proxy or a share link sees only what its grant names (kinds, actions, period), only
//!   released records, and never a labelled record unless each of its labels was granted.

use crate::account::StaffRole;
use crate::ids::{AccountId, GrantId, OrganizationId, PatientId};
use crate::record::{RecordKind, RecordMeta, SensitivityLabels};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// What a patient granted to a proxy or a share link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantScope {
    /// The record kinds it covers.
    pub kinds: BTreeSet<RecordKind>,
    /// The actions it allows (reading is implied by any of them).
    pub actions: BTreeSet<Action>,
    /// Sensitivity labels granted explicitly; a record with any other label stays hidden.
    pub labels: SensitivityLabels,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
}

impl GrantScope {
    fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.valid_from <= now && now < self.valid_until
    }
}

/// Who is asking. Adapters build it from the session (or the share link); the domain
/// authorises with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A patient acting for themselves, their account linked to `patient`.
    Patient {
        account: AccountId,
        patient: PatientId,
    },
    /// A member of staff of one organisation.
    Staff {
        account: AccountId,
        role: StaffRole,
        organization: OrganizationId,
    },
    /// Someone acting on a patient's behalf under a grant (a parent, a carer, an outside
    /// provider).
    Proxy {
        account: AccountId,
        grant: GrantId,
        patient: PatientId,
        scope: GrantScope,
    },
    /// Whoever holds a share link (read-only: it views, and downloads what it views).
    ShareLink {
        grant: GrantId,
        patient: PatientId,
        scope: GrantScope,
    },
}

impl Actor {
    /// The actor a signed-in account acts as on its own: a patient with a chart, or staff.
    /// `None` for a patient account not yet connected to a chart.
    pub fn for_account(account: &crate::account::Account) -> Option<Self> {
        use crate::account::{ChartLink, Role};
        match (account.role, account.chart) {
            (Role::Staff { role, organization }, _) => Some(Self::Staff {
                account: account.id,
                role,
                organization,
            }),
            (Role::Patient, ChartLink::Linked { patient }) => Some(Self::Patient {
                account: account.id,
                patient,
            }),
            (Role::Patient, ChartLink::Unlinked) => None,
        }
    }

    /// The signed-in account, if any (a share link has none).
    pub fn account(&self) -> Option<AccountId> {
        match self {
            Self::Patient { account, .. }
            | Self::Staff { account, .. }
            | Self::Proxy { account, .. } => Some(*account),
            Self::ShareLink { .. } => None,
        }
    }

    /// The grant the actor uses, if any.
    pub fn grant(&self) -> Option<GrantId> {
        match self {
            Self::Proxy { grant, .. } | Self::ShareLink { grant, .. } => Some(*grant),
            Self::Patient { .. } | Self::Staff { .. } => None,
        }
    }

    /// The chart the actor is tied to (patients, proxies and share links have exactly one).
    pub fn own_chart(&self) -> Option<PatientId> {
        match self {
            Self::Patient { patient, .. }
            | Self::Proxy { patient, .. }
            | Self::ShareLink { patient, .. } => Some(*patient),
            Self::Staff { .. } => None,
        }
    }

    /// A stable code for the audit log.
    pub fn kind_code(&self) -> &'static str {
        match self {
            Self::Patient { .. } => "patient",
            Self::Staff { .. } => "staff",
            Self::Proxy { .. } => "proxy",
            Self::ShareLink { .. } => "share_link",
        }
    }
}

/// What the actor wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// See a chart's summary, lists and counts.
    ViewChart,
    /// Read one record.
    Read,
    /// Download records (FHIR, IPS, PDF).
    Export,
    /// File a new record (a result, a note) in a chart.
    Create,
    /// Release a held record to the patient.
    Release,
    /// See who accessed the chart.
    ViewAccessHistory,
    /// See a chart's name, birth date and record number (identity checks at the front desk).
    ViewDemographics,
    /// Prove people's identity for an organisation: work its queue of accounts waiting to be
    /// connected to a chart, issue activation codes.
    ProofIdentity,
    /// Invite and list the organisation's staff.
    ManageTeam,
    /// Write to the care team about a chart (a patient's own; a proxy's with that grant).
    Message,
    /// Book, move or cancel appointments for a chart; for staff, on the organisation, keep
    /// its schedule (locations, visit types, availability, day views).
    Book,
    /// Ask for a refill of a medication of a chart.
    RequestRefill,
    /// See and pay a chart's bills.
    PayBills,
    /// Read a chart's message threads (the patient's side), or a thread of a care pool the
    /// staff member answers.
    ReadMessages,
    /// Approve or deny a chart's refill requests (the organisation's clinicians).
    DecideRefill,
    /// Keep a chart's account (post statements, adjust, refund) and, on the organisation,
    /// its billing (settings, imports): the organisation's billing staff and administrators.
    ManageBills,
}

impl Action {
    pub const ALL: [Action; 16] = [
        Self::ViewChart,
        Self::Read,
        Self::Export,
        Self::Create,
        Self::Release,
        Self::ViewAccessHistory,
        Self::ViewDemographics,
        Self::ProofIdentity,
        Self::ManageTeam,
        Self::Message,
        Self::Book,
        Self::RequestRefill,
        Self::PayBills,
        Self::ReadMessages,
        Self::DecideRefill,
        Self::ManageBills,
    ];

    /// What a patient does for themselves and may let a proxy do for them, beyond reading.
    pub fn acts_for_patient(self) -> bool {
        matches!(
            self,
            Self::Message | Self::Book | Self::RequestRefill | Self::PayBills
        )
    }

    /// The action of a stored code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.code() == code)
    }

    /// A stable code for storage and the audit log.
    pub fn code(self) -> &'static str {
        match self {
            Self::ViewChart => "view_chart",
            Self::Read => "read",
            Self::Export => "export",
            Self::Create => "create",
            Self::Release => "release",
            Self::ViewAccessHistory => "view_access_history",
            Self::ViewDemographics => "view_demographics",
            Self::ProofIdentity => "proof_identity",
            Self::ManageTeam => "manage_team",
            Self::Message => "message",
            Self::Book => "book",
            Self::RequestRefill => "request_refill",
            Self::PayBills => "pay_bills",
            Self::ReadMessages => "read_messages",
            Self::DecideRefill => "decide_refill",
            Self::ManageBills => "manage_bills",
        }
    }
}

/// Who proves people's identity for an organisation (works its queue of accounts waiting for
/// a chart, issues activation codes): the front desk and the organisation's administrators.
/// They, and clinicians finding a chart to open, may see who a chart is (name, birth date,
/// record number); billing staff may not. The identity use cases and [`decide`] both ask this,
/// so there is one rule.
pub fn proofs_identity(role: StaffRole) -> bool {
    matches!(role, StaffRole::FrontDesk | StaffRole::OrganizationAdmin)
}

/// Who keeps an organisation's patient accounts (statements, adjustments, refunds, billing
/// settings): its billing staff and administrators. They see a chart's bills and who the
/// patient is, never the clinical record.
pub fn keeps_bills(role: StaffRole) -> bool {
    matches!(role, StaffRole::Billing | StaffRole::OrganizationAdmin)
}

/// What the action is about.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A whole chart (its summary, its lists, a new record in it).
    Chart {
        patient: PatientId,
        organization: OrganizationId,
    },
    /// One record of a kind in a chart (lists ask this per kind).
    Kind {
        patient: PatientId,
        organization: OrganizationId,
        kind: RecordKind,
    },
    /// One stored record.
    Record {
        meta: &'a RecordMeta,
        kind: RecordKind,
    },
    /// An organisation's own business (its identity queue, its team): no chart.
    Organization { organization: OrganizationId },
    /// A message thread of a chart, with a care pool (answered by `pool_staff`).
    Thread {
        patient: PatientId,
        organization: OrganizationId,
        pool_staff: &'a BTreeSet<AccountId>,
    },
}

impl Target<'_> {
    /// The chart the target is in (none for an organisation's business) and its organisation.
    fn chart(&self) -> (Option<PatientId>, OrganizationId) {
        match self {
            Self::Chart {
                patient,
                organization,
            }
            | Self::Kind {
                patient,
                organization,
                ..
            } => (Some(*patient), *organization),
            Self::Record { meta, .. } => (Some(meta.patient_id), meta.organization_id),
            Self::Organization { organization } => (None, *organization),
            Self::Thread {
                patient,
                organization,
                ..
            } => (Some(*patient), *organization),
        }
    }
    fn kind(&self) -> Option<RecordKind> {
        match self {
            Self::Kind { kind, .. } | Self::Record { kind, .. } => Some(*kind),
            Self::Chart { .. } | Self::Organization { .. } | Self::Thread { .. } => None,
        }
    }
}

/// The answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Allowed; show the record behind a short notice naming these labels.
    AllowWithNotice(SensitivityLabels),
    /// Refused: answer exactly as if it did not exist.
    Deny,
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        !matches!(self, Self::Deny)
    }
}

/// May `actor` do `action` on `target` at `now`?
pub fn decide(actor: &Actor, action: Action, target: Target<'_>, now: DateTime<Utc>) -> Decision {
    let (patient, organization) = target.chart();
    let kind = target.kind();
    let record = match target {
        Target::Record { meta, .. } => Some(meta),
        Target::Chart { .. }
        | Target::Kind { .. }
        | Target::Organization { .. }
        | Target::Thread { .. } => None,
    };
    // The staff who answer a thread's care pool, when the target is a thread.
    let pool_staff = match target {
        Target::Thread { pool_staff, .. } => Some(pool_staff),
        _ => None,
    };
    match actor {
        Actor::Patient { patient: mine, .. } => {
            if Some(*mine) != patient
                || !matches!(
                    action,
                    Action::ViewChart
                        | Action::Read
                        | Action::Export
                        | Action::ViewAccessHistory
                        | Action::ViewDemographics
                        | Action::Message
                        | Action::Book
                        | Action::RequestRefill
                        | Action::PayBills
                        | Action::ReadMessages
                )
            {
                return Decision::Deny;
            }
            match record {
                Some(meta) if !meta.release.is_visible_at(now) => Decision::Deny,
                Some(meta) if !meta.sensitivity.is_empty() => {
                    Decision::AllowWithNotice(meta.sensitivity)
                }
                _ => Decision::Allow,
            }
        }
        Actor::Staff {
            account,
            role,
            organization: theirs,
        } => {
            // Chart actions need a chart; an organisation's business needs none.
            let about_chart = patient.is_some();
            let allowed = *theirs == organization
                && match action {
                    Action::ViewChart | Action::Read | Action::Create | Action::Release => {
                        about_chart && *role == StaffRole::Clinician
                    }
                    // A chart's refill requests, and the organisation's queue of them.
                    Action::DecideRefill => *role == StaffRole::Clinician,
                    // Who a chart is: the front desk proving identities, and clinicians
                    // finding a chart to open (they see it when they open it anyway).
                    Action::ViewDemographics => {
                        about_chart && (proofs_identity(*role) || *role == StaffRole::Clinician)
                    }
                    Action::ProofIdentity => !about_chart && proofs_identity(*role),
                    Action::ManageTeam => !about_chart && *role == StaffRole::OrganizationAdmin,
                    // A thread is answered by the staff of its care pool, whatever their role.
                    Action::Message | Action::ReadMessages => {
                        pool_staff.is_some_and(|staff| staff.contains(account))
                    }
                    // The front desk (and administrators) book for the organisation's
                    // patients and, without a chart, keep its schedule.
                    Action::Book => proofs_identity(*role),
                    Action::ManageBills => keeps_bills(*role),
                    // Bills are paid by the patient's side only (staff keep the account
                    // with `ManageBills`); a refill is asked for by the patient's side only.
                    Action::Export
                    | Action::ViewAccessHistory
                    | Action::RequestRefill
                    | Action::PayBills => false,
                };
            if allowed {
                Decision::Allow
            } else {
                Decision::Deny
            }
        }
        Actor::Proxy {
            patient: theirs,
            scope,
            ..
        }
        | Actor::ShareLink {
            patient: theirs,
            scope,
            ..
        } => {
            let action_ok = match action {
                Action::ViewChart | Action::Read => !scope.actions.is_empty(),
                // A share link downloads exactly what it shows, when its grant says so.
                Action::Export => scope.actions.contains(&Action::Export),
                // Acting for the patient: a proxy with that grant; a share link never.
                Action::Message | Action::Book | Action::RequestRefill | Action::PayBills => {
                    !matches!(actor, Actor::ShareLink { .. }) && scope.actions.contains(&action)
                }
                // The patient's threads: a proxy who may message for them.
                Action::ReadMessages => {
                    !matches!(actor, Actor::ShareLink { .. })
                        && scope.actions.contains(&Action::Message)
                }
                Action::Create
                | Action::Release
                | Action::ViewAccessHistory
                | Action::ViewDemographics
                | Action::ProofIdentity
                | Action::ManageTeam
                | Action::DecideRefill
                | Action::ManageBills => false,
            };
            let kind_ok = kind.is_none_or(|k| scope.kinds.contains(&k));
            let record_ok = record.is_none_or(|meta| {
                meta.release.is_visible_at(now)
                    && meta.sensitivity.iter().all(|l| scope.labels.contains(l))
            });
            if Some(*theirs) == patient && scope.in_force(now) && action_ok && kind_ok && record_ok
            {
                Decision::Allow
            } else {
                Decision::Deny
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{RecordSource, ReleaseState, SensitivityLabel};
    use chrono::{Duration, TimeZone};
    use uuid::Uuid;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }
    const ORG: OrganizationId = OrganizationId::from_uuid(Uuid::from_u128(1));
    const OTHER_ORG: OrganizationId = OrganizationId::from_uuid(Uuid::from_u128(2));
    const ANN: PatientId = PatientId::from_uuid(Uuid::from_u128(10));
    const BO: PatientId = PatientId::from_uuid(Uuid::from_u128(11));

    fn meta(release: ReleaseState, labels: SensitivityLabels) -> RecordMeta {
        RecordMeta {
            id: crate::ids::RecordId::from_uuid(Uuid::from_u128(100)),
            patient_id: ANN,
            organization_id: ORG,
            encounter_id: None,
            source: RecordSource::default(),
            source_identifier: None,
            sensitivity: labels,
            release,
            filed_at: now() - Duration::days(1),
        }
    }
    fn released() -> ReleaseState {
        ReleaseState::Released {
            at: now() - Duration::hours(1),
        }
    }
    fn record(m: &RecordMeta) -> Target<'_> {
        Target::Record {
            meta: m,
            kind: RecordKind::Observation,
        }
    }
    fn patient(p: PatientId) -> Actor {
        Actor::Patient {
            account: AccountId::from_uuid(Uuid::from_u128(20)),
            patient: p,
        }
    }
    fn staff(role: StaffRole, organization: OrganizationId) -> Actor {
        Actor::Staff {
            account: AccountId::from_uuid(Uuid::from_u128(30)),
            role,
            organization,
        }
    }
    fn scope(labels: SensitivityLabels) -> GrantScope {
        GrantScope {
            kinds: [RecordKind::Observation, RecordKind::Immunization].into(),
            actions: [Action::Read, Action::Export].into(),
            labels,
            valid_from: now() - Duration::days(1),
            valid_until: now() + Duration::days(1),
        }
    }
    fn proxy(labels: SensitivityLabels) -> Actor {
        Actor::Proxy {
            account: AccountId::from_uuid(Uuid::from_u128(40)),
            grant: GrantId::from_uuid(Uuid::from_u128(50)),
            patient: ANN,
            scope: scope(labels),
        }
    }
    fn link(labels: SensitivityLabels) -> Actor {
        Actor::ShareLink {
            grant: GrantId::from_uuid(Uuid::from_u128(51)),
            patient: ANN,
            scope: scope(labels),
        }
    }

    #[test]
    fn patients_see_their_own_released_records_only() {
        let m = meta(released(), SensitivityLabels::empty());
        assert_eq!(
            decide(&patient(ANN), Action::Read, record(&m), now()),
            Decision::Allow
        );
        assert_eq!(
            decide(&patient(BO), Action::Read, record(&m), now()),
            Decision::Deny
        );
        for unreleased in [
            ReleaseState::Held,
            ReleaseState::NeverOnline,
            ReleaseState::Released {
                at: now() + Duration::minutes(1),
            },
        ] {
            let m = meta(unreleased, SensitivityLabels::empty());
            assert_eq!(
                decide(&patient(ANN), Action::Read, record(&m), now()),
                Decision::Deny,
                "{unreleased:?}"
            );
        }
        for action in [Action::Create, Action::Release] {
            assert_eq!(
                decide(&patient(ANN), action, record(&m), now()),
                Decision::Deny
            );
        }
    }

    #[test]
    fn labelled_records_reach_the_patient_behind_a_notice() {
        let labels = SensitivityLabels::empty().with(SensitivityLabel::Hiv);
        let m = meta(released(), labels);
        assert_eq!(
            decide(&patient(ANN), Action::Read, record(&m), now()),
            Decision::AllowWithNotice(labels)
        );
    }

    #[test]
    fn staff_act_within_their_organisation_and_only_clinicians_read_records() {
        let held = meta(ReleaseState::Held, SensitivityLabels::empty());
        let clinician = staff(StaffRole::Clinician, ORG);
        for action in [
            Action::Read,
            Action::Release,
            Action::Create,
            Action::ViewChart,
        ] {
            assert_eq!(
                decide(&clinician, action, record(&held), now()),
                Decision::Allow
            );
        }
        assert_eq!(
            decide(&clinician, Action::ViewAccessHistory, record(&held), now()),
            Decision::Deny
        );
        assert_eq!(
            decide(
                &staff(StaffRole::Clinician, OTHER_ORG),
                Action::Read,
                record(&held),
                now()
            ),
            Decision::Deny
        );
        // The front desk sees who a chart is (identity checks), not what is in it.
        let chart = Target::Chart {
            patient: ANN,
            organization: ORG,
        };
        let demographics =
            |role, org| decide(&staff(role, org), Action::ViewDemographics, chart, now());
        assert_eq!(demographics(StaffRole::FrontDesk, ORG), Decision::Allow);
        assert_eq!(
            demographics(StaffRole::OrganizationAdmin, ORG),
            Decision::Allow
        );
        assert_eq!(
            demographics(StaffRole::Clinician, ORG),
            Decision::Allow,
            "clinicians find a chart by name and birth date before they open it"
        );
        assert_eq!(
            decide(
                &staff(StaffRole::Clinician, ORG),
                Action::ProofIdentity,
                Target::Organization { organization: ORG },
                now()
            ),
            Decision::Deny,
            "but they do not link accounts to charts"
        );
        assert_eq!(demographics(StaffRole::Billing, ORG), Decision::Deny);
        assert_eq!(
            demographics(StaffRole::FrontDesk, OTHER_ORG),
            Decision::Deny
        );
        assert_eq!(
            decide(
                &proxy(SensitivityLabels::empty()),
                Action::ViewDemographics,
                chart,
                now()
            ),
            Decision::Deny
        );
        for role in [
            StaffRole::FrontDesk,
            StaffRole::Billing,
            StaffRole::OrganizationAdmin,
        ] {
            assert_eq!(
                decide(&staff(role, ORG), Action::Read, record(&held), now()),
                Decision::Deny
            );
        }
    }

    #[test]
    fn an_organisations_own_business_is_for_its_front_desk_and_administrators() {
        let ours = Target::Organization { organization: ORG };
        let may = |actor: &Actor, action| decide(actor, action, ours, now()).is_allowed();
        // Proving identity: the same roles that may see who a chart is.
        for role in [
            StaffRole::Clinician,
            StaffRole::FrontDesk,
            StaffRole::Billing,
            StaffRole::OrganizationAdmin,
        ] {
            assert_eq!(
                may(&staff(role, ORG), Action::ProofIdentity),
                proofs_identity(role),
                "{role:?}"
            );
            assert_eq!(
                may(&staff(role, ORG), Action::ManageTeam),
                role == StaffRole::OrganizationAdmin,
                "{role:?}"
            );
            assert!(!may(&staff(role, OTHER_ORG), Action::ProofIdentity));
            assert!(!may(&staff(role, OTHER_ORG), Action::ManageTeam));
        }
        let ann = Actor::Patient {
            account: AccountId::from_uuid(Uuid::from_u128(20)),
            patient: ANN,
        };
        for actor in [ann, proxy(SensitivityLabels::empty())] {
            assert!(!may(&actor, Action::ProofIdentity));
            assert!(!may(&actor, Action::ManageTeam));
            assert!(
                !may(&actor, Action::ViewChart),
                "an organisation is no chart"
            );
        }
        // And the organisation's business is not a chart action, nor the other way round.
        let admin = staff(StaffRole::OrganizationAdmin, ORG);
        let chart = Target::Chart {
            patient: ANN,
            organization: ORG,
        };
        assert!(!decide(&admin, Action::ManageTeam, chart, now()).is_allowed());
        assert!(!decide(&admin, Action::ViewDemographics, ours, now()).is_allowed());
    }

    #[test]
    fn proxies_and_share_links_never_see_labels_that_were_not_granted() {
        let none = SensitivityLabels::empty();
        let hiv = none.with(SensitivityLabel::Hiv);
        let hiv_and_genetic = hiv.with(SensitivityLabel::Genetic);
        let plain = meta(released(), none);
        let labelled = meta(released(), hiv_and_genetic);
        for actor in [proxy(none), link(none)] {
            assert_eq!(
                decide(&actor, Action::Read, record(&plain), now()),
                Decision::Allow
            );
            assert_eq!(
                decide(&actor, Action::Read, record(&labelled), now()),
                Decision::Deny
            );
        }
        // Every label on the record must have been granted, not just one.
        assert_eq!(
            decide(&proxy(hiv), Action::Read, record(&labelled), now()),
            Decision::Deny
        );
        assert_eq!(
            decide(
                &proxy(hiv_and_genetic),
                Action::Read,
                record(&labelled),
                now()
            ),
            Decision::Allow
        );
        assert_eq!(
            decide(
                &link(hiv_and_genetic),
                Action::Read,
                record(&labelled),
                now()
            ),
            Decision::Allow
        );
    }

    #[test]
    fn acting_for_a_patient_is_theirs_and_a_proxys_with_that_grant_never_a_links() {
        let chart = Target::Chart {
            patient: ANN,
            organization: ORG,
        };
        let mut with_booking = scope(SensitivityLabels::empty());
        with_booking.actions.insert(Action::Book);
        let proxy = |s: GrantScope| Actor::Proxy {
            account: AccountId::from_uuid(Uuid::from_u128(40)),
            grant: GrantId::from_uuid(Uuid::from_u128(50)),
            patient: ANN,
            scope: s,
        };
        let link = Actor::ShareLink {
            grant: GrantId::from_uuid(Uuid::from_u128(51)),
            patient: ANN,
            scope: with_booking.clone(),
        };
        for action in [
            Action::Message,
            Action::Book,
            Action::RequestRefill,
            Action::PayBills,
        ] {
            assert!(decide(&patient(ANN), action, chart, now()).is_allowed());
            assert!(!decide(&patient(BO), action, chart, now()).is_allowed());
            assert!(
                !decide(&link, action, chart, now()).is_allowed(),
                "links only read"
            );
            assert_eq!(
                decide(&staff(StaffRole::FrontDesk, ORG), action, chart, now()).is_allowed(),
                action == Action::Book,
                "{action:?}: the front desk books for the organisation's patients"
            );
            assert!(
                !decide(
                    &staff(StaffRole::FrontDesk, OTHER_ORG),
                    action,
                    chart,
                    now()
                )
                .is_allowed()
            );
            assert!(
                !decide(&staff(StaffRole::Clinician, ORG), action, chart, now()).is_allowed(),
                "{action:?}: not a clinician's"
            );
            assert_eq!(
                decide(&proxy(with_booking.clone()), action, chart, now()).is_allowed(),
                action == Action::Book,
                "{action:?}: only what was granted"
            );
        }
    }

    #[test]
    fn grants_are_bounded_by_kind_action_period_chart_and_release() {
        let none = SensitivityLabels::empty();
        let m = meta(released(), none);
        let note = Target::Record {
            meta: &m,
            kind: RecordKind::ClinicalNote,
        };
        assert_eq!(
            decide(&proxy(none), Action::Read, note, now()),
            Decision::Deny,
            "kind not granted"
        );
        assert_eq!(
            decide(&proxy(none), Action::Export, record(&m), now()),
            Decision::Allow
        );
        assert_eq!(
            decide(&link(none), Action::Export, record(&m), now()),
            Decision::Allow,
            "a share link downloads what it shows"
        );
        assert_eq!(
            decide(
                &link(none),
                Action::Create,
                Target::Chart {
                    patient: ANN,
                    organization: ORG
                },
                now()
            ),
            Decision::Deny,
            "share links are read-only"
        );
        assert_eq!(
            decide(&proxy(none), Action::ViewAccessHistory, record(&m), now()),
            Decision::Deny
        );
        let later = now() + Duration::days(2);
        let m_later = meta(released(), none);
        assert_eq!(
            decide(&proxy(none), Action::Read, record(&m_later), later),
            Decision::Deny,
            "expired grant"
        );
        let held = meta(ReleaseState::Held, none);
        assert_eq!(
            decide(&proxy(none), Action::Read, record(&held), now()),
            Decision::Deny
        );
        let bo_chart = Target::Chart {
            patient: BO,
            organization: ORG,
        };
        assert_eq!(
            decide(&proxy(none), Action::ViewChart, bo_chart, now()),
            Decision::Deny
        );
    }
}
