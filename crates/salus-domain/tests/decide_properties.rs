//! Property tests of the one access decision for proxies and share links: for random scopes,
//! records, labels, release states and times, `decide` never grants beyond the scope,
//! narrowing a scope never widens what is visible, and a grant acts only while it is active.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use salus_domain::access::{Action, Actor, GrantScope, Target, decide};
use salus_domain::consent::{Grant, GrantMaker, GrantState, Grantee, PasscodeAttempts};
use salus_domain::ids::{AccountId, GrantId, OrganizationId, PatientId, RecordId};
use salus_domain::record::{
    RecordKind, RecordMeta, RecordSource, ReleaseState, SensitivityLabel, SensitivityLabels,
};
use salus_domain::text::Email;
use std::collections::BTreeSet;

const ACTIONS: [Action; 16] = Action::ALL;

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

fn at(minutes: i64) -> DateTime<Utc> {
    base() + Duration::minutes(minutes)
}

fn uuid(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}

fn ann() -> PatientId {
    PatientId::from_uuid(uuid(1))
}

fn org() -> OrganizationId {
    OrganizationId::from_uuid(uuid(10))
}

/// The members of `all` whose bit is set in `mask`.
fn subset<T: Copy + Ord>(all: &[T], mask: u32) -> BTreeSet<T> {
    all.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, v)| *v)
        .collect()
}

fn labels(mask: u8) -> SensitivityLabels {
    SensitivityLabel::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .fold(SensitivityLabels::empty(), |l, (_, x)| l.with(*x))
}

fn scope(kinds: u32, actions: u32, label_mask: u8, from: i64, length: i64) -> GrantScope {
    GrantScope {
        kinds: subset(RecordKind::ALL, kinds),
        actions: subset(&ACTIONS, actions),
        labels: labels(label_mask),
        valid_from: at(from),
        valid_until: at(from + length),
    }
}

/// A scope inside `wide`: each part a subset of it (by the masks), the period within it.
fn narrowed(
    wide: &GrantScope,
    kinds: u32,
    actions: u32,
    label_mask: u8,
    cut: (i64, i64),
) -> GrantScope {
    let k: Vec<RecordKind> = wide.kinds.iter().copied().collect();
    let a: Vec<Action> = wide.actions.iter().copied().collect();
    let length = (wide.valid_until - wide.valid_from).num_minutes().max(1);
    let start = cut.0.rem_euclid(length);
    let end = start + 1 + cut.1.rem_euclid(length - start);
    GrantScope {
        kinds: subset(&k, kinds),
        actions: subset(&a, actions),
        labels: labels(label_mask & wide.labels.bits()),
        valid_from: wide.valid_from + Duration::minutes(start),
        valid_until: wide.valid_from + Duration::minutes(end.min(length)),
    }
}

fn release(choice: u8, minutes: i64) -> ReleaseState {
    match choice % 3 {
        0 => ReleaseState::Released { at: at(minutes) },
        1 => ReleaseState::Held,
        _ => ReleaseState::NeverOnline,
    }
}

fn meta(patient: PatientId, label_mask: u8, state: ReleaseState) -> RecordMeta {
    RecordMeta {
        id: RecordId::from_uuid(uuid(100)),
        patient_id: patient,
        organization_id: org(),
        encounter_id: None,
        source: RecordSource::default(),
        source_identifier: None,
        sensitivity: labels(label_mask),
        release: state,
        filed_at: base(),
    }
}

fn proxy(scope: GrantScope) -> Actor {
    Actor::Proxy {
        account: AccountId::from_uuid(uuid(50)),
        grant: GrantId::from_uuid(uuid(60)),
        patient: ann(),
        scope,
    }
}

fn share_link(scope: GrantScope) -> Actor {
    Actor::ShareLink {
        grant: GrantId::from_uuid(uuid(61)),
        patient: ann(),
        scope,
    }
}

/// The parts of a random case: a scope, a record (patient, kind, labels, release) and a
/// moment, an action, and whether the actor is a share link.
#[derive(Debug, Clone)]
struct Case {
    scope: GrantScope,
    own_patient: bool,
    kind: RecordKind,
    record_labels: u8,
    release: ReleaseState,
    now: DateTime<Utc>,
    action: Action,
    link: bool,
}

fn cases() -> impl Strategy<Value = Case> {
    (
        (
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            0_i64..500,
            1_i64..500,
        ),
        any::<bool>(),
        0_usize..RecordKind::ALL.len(),
        any::<u8>(),
        (any::<u8>(), -100_i64..1100),
        -100_i64..1100,
        0_usize..ACTIONS.len(),
        any::<bool>(),
    )
        .prop_map(
            |(
                (k, a, l, from, length),
                own_patient,
                kind,
                record_labels,
                (r, released),
                now,
                action,
                link,
            )| Case {
                scope: scope(k, a, l, from, length),
                own_patient,
                kind: RecordKind::ALL[kind],
                record_labels,
                release: release(r, released),
                now: at(now),
                action: ACTIONS[action],
                link,
            },
        )
}

fn decide_case(c: &Case, scope: GrantScope) -> bool {
    let actor = if c.link {
        share_link(scope)
    } else {
        proxy(scope)
    };
    let patient = if c.own_patient {
        ann()
    } else {
        PatientId::from_uuid(uuid(2))
    };
    let m = meta(patient, c.record_labels, c.release);
    decide(
        &actor,
        c.action,
        Target::Record {
            meta: &m,
            kind: c.kind,
        },
        c.now,
    )
    .is_allowed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever a proxy or a share link may do with a record is inside its grant: the
    /// patient's chart, a granted kind, a granted action (reading for any), within the
    /// period, every label of the record granted, and the record released by now.
    #[test]
    fn nothing_beyond_the_scope(c in cases()) {
        if decide_case(&c, c.scope.clone()) {
            let s = &c.scope;
            prop_assert!(c.own_patient, "another patient's record");
            prop_assert!(s.kinds.contains(&c.kind), "a kind not granted");
            prop_assert!(s.valid_from <= c.now && c.now < s.valid_until, "outside the period");
            prop_assert!(c.release.is_visible_at(c.now), "a record not released");
            let record = labels(c.record_labels);
            prop_assert!(record.iter().all(|l| s.labels.contains(l)), "a label not granted");
            match c.action {
                Action::ViewChart | Action::Read => prop_assert!(!s.actions.is_empty()),
                Action::Export => prop_assert!(s.actions.contains(&Action::Export)),
                Action::ReadMessages => {
                    prop_assert!(!c.link, "a share link reads no messages");
                    prop_assert!(s.actions.contains(&Action::Message), "messaging not granted");
                }
                a if a.acts_for_patient() => {
                    prop_assert!(!c.link, "a share link only reads");
                    prop_assert!(s.actions.contains(&a), "{a:?} not granted");
                }
                other => prop_assert!(false, "{other:?} is never a grantee's"),
            }
        }
    }

    /// A narrower scope never shows more than the wider one it was cut from.
    #[test]
    fn narrowing_never_widens(
        c in cases(),
        masks in (any::<u32>(), any::<u32>(), any::<u8>()),
        cut in (any::<i64>(), any::<i64>()),
    ) {
        let narrow = narrowed(&c.scope, masks.0, masks.1, masks.2, cut);
        prop_assert!(narrow.within(&c.scope));
        if decide_case(&c, narrow) {
            prop_assert!(decide_case(&c, c.scope.clone()));
        }
    }

    /// Only an active grant, in force, acts — and a proxy grant only for its own account.
    #[test]
    fn only_an_active_grant_acts(
        state in 0_u8..3,
        t in (-100_i64..1100, 0_i64..1000),
        now in -100_i64..1100,
        same_account in any::<bool>(),
        grantee_kind in 0_u8..3,
        locked in any::<bool>(),
    ) {
        let link = grantee_kind == 1;
        let (a, b) = (at(t.0), at(t.0 + t.1));
        let revoker = AccountId::from_uuid(uuid(70));
        let state = match state {
            0 => GrantState::Pending { invited_at: a, expires: b },
            1 => GrantState::Active { accepted_at: a, until: b },
            _ => GrantState::Revoked { at: a, by: revoker },
        };
        let holder = AccountId::from_uuid(uuid(50));
        let email = Email::parse("carer@example.org").unwrap();
        let grantee = match grantee_kind {
            0 => Grantee::Proxy { account: Some(holder), email, relationship: None },
            1 => Grantee::ShareLink {
                recipient: None,
                passcode: None,
                attempts: PasscodeAttempts {
                    failed: if locked { 10 } else { 0 },
                    last_failed: None,
                    locked_at: locked.then(|| at(t.0)),
                },
            },
            _ => Grantee::Guardian { account: holder, email, relationship: None },
        };
        let grant = Grant {
            id: GrantId::from_uuid(uuid(60)),
            patient: ann(),
            grantee,
            scope: scope(u32::MAX, u32::MAX, u8::MAX, -100, 2000),
            state,
            note: None,
            made_by: GrantMaker::Patient(AccountId::from_uuid(uuid(40))),
            made_at: base(),
        };
        let asking = if same_account { holder } else { AccountId::from_uuid(uuid(51)) };
        // A share link is held without a session; a proxy or guardian grant by its account.
        let session = if link && !same_account { None } else { Some(asking) };
        let actor = grant.actor(session, at(now));
        let active = matches!(state, GrantState::Active { until, .. } if at(now) < until);
        if actor.is_some() {
            prop_assert!(active, "{state:?} at {now} acted");
            prop_assert!(
                (link && session.is_none()) || (!link && same_account),
                "someone else's grant acted"
            );
        } else {
            prop_assert!(!active || (!link && !same_account) || (link && (locked || session.is_some())));
        }
        if link {
            prop_assert!(grant.actor(Some(asking), at(now)).is_none(), "a session used a share link");
        }
        if matches!(state, GrantState::Revoked { .. }) {
            prop_assert!(actor.is_none(), "a revoked grant acted");
        }
        if link && locked {
            prop_assert!(actor.is_none(), "a locked share link acted");
        }
    }
}
