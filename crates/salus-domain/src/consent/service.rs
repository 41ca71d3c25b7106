//! The consent use cases: a patient invites a proxy, the invitee accepts, the patient sees,
//! narrows or widens, and revokes their grants; a proxy sees whose records they may open.

use super::{Grant, GrantMaker, GrantRepository, GrantState, Grantee};
use crate::access::{Action, Actor, GrantScope};
use crate::account::{
    Account, AuthAudit, AuthEvent, AuthEventKind, Mailer, OutgoingEmail, SecretSource, SecretText,
};
use crate::clock::Clock;
use crate::ids::{GrantId, IdGenerator};
use crate::record::{RecordKind, SensitivityLabel, SensitivityLabels};
use crate::repo::RepoError;
use crate::text::{Email, GrantText};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::collections::BTreeSet;
use std::sync::Arc;

/// How long an invitation works.
pub const INVITATION_DAYS: i64 = 7;
/// A grant's default length, and the longest a patient may choose.
pub const DEFAULT_GRANT_DAYS: i64 = 365;
pub const MAX_GRANT_YEARS: i32 = 5;

/// The actions a patient may grant: view (`read`), download (`export`), and acting for them —
/// message the care team, book appointments, request refills, pay bills (each counts once
/// that capability exists; `decide` already knows them).
pub const GRANTABLE_ACTIONS: [Action; 6] = [
    Action::Read,
    Action::Export,
    Action::Message,
    Action::Book,
    Action::RequestRefill,
    Action::PayBills,
];

/// What a grant allows, as a patient chose it: kinds, actions, labels ticked one by one,
/// and the last day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeChoice {
    pub kinds: BTreeSet<RecordKind>,
    pub actions: BTreeSet<Action>,
    pub labels: SensitivityLabels,
    /// The last day the grant works (it ends at the start of the next day, UTC).
    pub last_day: Option<NaiveDate>,
}

/// Why a scope or an invitation was refused as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("Choose at least one kind of record.")]
    NoKinds,
    #[error("Unknown kind of record.")]
    Kind,
    #[error(
        "Choose what they may do: view, download, message the care team, book appointments, request refills or pay bills."
    )]
    Action,
    #[error("Unknown kind of sensitive information.")]
    Label,
    #[error("Choose an end date from tomorrow to five years from today, as YYYY-MM-DD.")]
    Until,
    #[error("Enter the email address of the person you invite.")]
    Email,
    #[error("Keep the relationship and the note to 200 characters each.")]
    Text,
    #[error("Choose how long the link works: from 1 hour to 30 days.")]
    Hours,
    #[error("A passcode has 6 to 64 characters. Leave it empty for none.")]
    Passcode,
}

impl ScopeError {
    /// A stable code for the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::NoKinds | Self::Kind => "invalid_kinds",
            Self::Action => "invalid_actions",
            Self::Label => "invalid_labels",
            Self::Until => "invalid_until",
            Self::Email => "invalid_email",
            Self::Text => "text_too_long",
            Self::Hours => "invalid_hours",
            Self::Passcode => "invalid_passcode",
        }
    }
}

impl ScopeChoice {
    /// A scope from the codes a form or the API sent: record kind codes, `read` / `export`,
    /// label codes, and an optional last day `YYYY-MM-DD`. Reading is implied by downloading.
    ///
    /// # Errors
    /// The first part that is not valid.
    pub fn from_codes<'a>(
        kinds: impl IntoIterator<Item = &'a str>,
        actions: impl IntoIterator<Item = &'a str>,
        labels: impl IntoIterator<Item = &'a str>,
        last_day: Option<&str>,
    ) -> Result<Self, ScopeError> {
        let kinds = kinds
            .into_iter()
            .map(|k| RecordKind::from_code(k.trim()).ok_or(ScopeError::Kind))
            .collect::<Result<BTreeSet<_>, _>>()?;
        if kinds.is_empty() {
            return Err(ScopeError::NoKinds);
        }
        let mut chosen = actions
            .into_iter()
            .map(|a| {
                Action::from_code(a.trim())
                    .filter(|a| GRANTABLE_ACTIONS.contains(a))
                    .ok_or(ScopeError::Action)
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        if chosen.is_empty() {
            return Err(ScopeError::Action);
        }
        chosen.insert(Action::Read);
        let labels = labels
            .into_iter()
            .try_fold(SensitivityLabels::empty(), |acc, l| {
                SensitivityLabel::from_code(l.trim())
                    .map(|l| acc.with(l))
                    .ok_or(ScopeError::Label)
            })?;
        let last_day = match last_day.map(str::trim).filter(|d| !d.is_empty()) {
            None => None,
            Some(d) => {
                Some(NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| ScopeError::Until)?)
            }
        };
        Ok(Self {
            kinds,
            actions: chosen,
            labels,
            last_day,
        })
    }

    /// The scope from `now`: until the end of the last day chosen (a year when none was),
    /// which must lie after today and at most five years ahead — days as the clinic's zone
    /// `tz` counts them (a grant "until 10 December" in Boston lasts until midnight there).
    fn scope(&self, now: DateTime<Utc>, tz: chrono_tz::Tz) -> Result<GrantScope, ScopeError> {
        let today = now.with_timezone(&tz).date_naive();
        let last = self
            .last_day
            .unwrap_or_else(|| today + Duration::days(DEFAULT_GRANT_DAYS));
        let latest = today
            .with_year_offset(MAX_GRANT_YEARS)
            .ok_or(ScopeError::Until)?;
        if last <= today || last > latest {
            return Err(ScopeError::Until);
        }
        let until = midnight_after(last, tz).ok_or(ScopeError::Until)?;
        Ok(GrantScope {
            kinds: self.kinds.clone(),
            actions: self.actions.clone(),
            labels: self.labels,
            valid_from: now,
            valid_until: until,
        })
    }
}

/// The first instant of the day after `last` in zone `tz` (the earlier one when clocks go
/// back; an hour later when midnight does not exist there).
pub(super) fn midnight_after(last: NaiveDate, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    use chrono::TimeZone as _;
    let midnight = (last + Duration::days(1)).and_hms_opt(0, 0, 0)?;
    tz.from_local_datetime(&midnight)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(midnight + Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
}

/// An optional text field: empty means none.
pub(super) fn optional_text(t: &str) -> Result<Option<GrantText>, ScopeError> {
    match t.trim() {
        "" => Ok(None),
        t => GrantText::parse(t).map(Some).map_err(|_| ScopeError::Text),
    }
}

trait YearOffset {
    fn with_year_offset(self, years: i32) -> Option<NaiveDate>;
}

impl YearOffset for NaiveDate {
    fn with_year_offset(self, years: i32) -> Option<NaiveDate> {
        use chrono::Datelike as _;
        self.with_year(self.year() + years)
            .or_else(|| (self - Duration::days(1)).with_year(self.year() + years))
    }
}

/// A patient's invitation of a proxy.
#[derive(Debug, Clone)]
pub struct ProxyInvitation {
    pub email: Email,
    pub scope: ScopeChoice,
    pub relationship: Option<GrantText>,
    pub note: Option<GrantText>,
}

impl ProxyInvitation {
    /// An invitation from the fields as typed.
    ///
    /// # Errors
    /// [`ScopeError::Email`] or [`ScopeError::Text`]; the scope was read before.
    pub fn from_fields(
        email: &str,
        scope: ScopeChoice,
        relationship: &str,
        note: &str,
    ) -> Result<Self, ScopeError> {
        let email = Email::parse(email).map_err(|_| ScopeError::Email)?;
        Ok(Self {
            email,
            scope,
            relationship: optional_text(relationship)?,
            note: optional_text(note)?,
        })
    }
}

/// Why a consent use case changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// Only a patient grants access to their own record.
    #[error("Only the patient may do this.")]
    Forbidden,
    /// No such grant of this patient (one answer for missing and someone else's).
    #[error("There is no such grant.")]
    NotFound,
    #[error("{0}")]
    Input(ScopeError),
    /// A revoked grant cannot be changed.
    #[error("This grant has ended.")]
    Ended,
    /// A guardianship is the clinic's to change, not the (minor) patient's.
    #[error("Your clinic recorded this guardian. Ask the clinic to change it.")]
    ClinicOnly,
    /// Password hashing is saturated; try again shortly.
    #[error("Too busy right now. Please try again in a few seconds.")]
    Busy { retry_after_secs: u32 },
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Why an invitation was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// Unknown, used, expired or revoked: one answer.
    #[error("This invitation is not valid any more. Ask for a new one.")]
    InvalidOrExpired,
    /// Signed in with another address than the one invited, or the patient themselves.
    #[error("This invitation was sent to another email address. Sign in with that address.")]
    WrongAccount,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// What the consent use cases need.
#[derive(Clone)]
pub struct ConsentPorts {
    pub grants: Arc<dyn GrantRepository>,
    pub secrets: Arc<dyn SecretSource>,
    pub mailer: Arc<dyn Mailer>,
    pub audit: Arc<dyn AuthAudit>,
    /// Where a refused use of a grant is written (the patient's access history).
    pub log: Arc<dyn crate::audit::AccessLog>,
    /// Charts, for the front desk recording a grant for a patient of its organisation, and
    /// for the clinic whose days a grant counts in.
    pub patients: Arc<dyn crate::patient::PatientRepository>,
    pub organizations: Arc<dyn crate::organization::OrganizationRepository>,
    /// Accounts: a guardian's, found by address; a patient's own, told they came of age.
    pub accounts: Arc<dyn crate::account::AccountRepository>,
    /// argon2id, for share-link passcodes.
    pub hasher: Arc<dyn crate::account::PasswordHasher>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    /// The portal's public address, for the invitation link (no trailing slash).
    pub public_url: String,
}

impl std::fmt::Debug for ConsentPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentPorts").finish_non_exhaustive()
    }
}

/// The consent use cases.
#[derive(Clone)]
pub struct ConsentService {
    pub(super) p: ConsentPorts,
}

impl std::fmt::Debug for ConsentService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentService").finish_non_exhaustive()
    }
}

/// A person whose records a proxy may open, under which grant.
#[derive(Debug, Clone)]
pub struct ProxyChoice {
    pub grant: GrantView,
    pub name: crate::patient::PersonName,
}

/// A grant as its patient or its proxy sees it: with its state now.
#[derive(Debug, Clone)]
pub struct GrantView {
    pub grant: Grant,
    pub state: GrantState,
}

impl ConsentService {
    pub fn new(p: ConsentPorts) -> Self {
        Self { p }
    }

    /// The time zone of the clinic whose chart `patient` is (UTC when unknown).
    pub(super) async fn zone_of(
        &self,
        patient: crate::ids::PatientId,
    ) -> Result<chrono_tz::Tz, RepoError> {
        let Some(chart) = self.p.patients.find(patient).await? else {
            return Ok(chrono_tz::Tz::UTC);
        };
        Ok(self
            .p
            .organizations
            .find(chart.organization_id)
            .await?
            .map_or(chrono_tz::Tz::UTC, |o| o.time_zone))
    }

    pub(super) async fn audit(
        &self,
        kind: AuthEventKind,
        account: Option<crate::ids::AccountId>,
        request_id: Option<&str>,
    ) -> Result<(), RepoError> {
        self.p
            .audit
            .record(AuthEvent {
                at: self.p.clock.now(),
                kind,
                account,
                request_id: request_id.map(str::to_owned),
            })
            .await
    }

    /// Patient: invites someone by email to see their records within `inv`'s scope. The
    /// email says only that someone invited them to a patient portal — no name, nothing about
    /// health. The invitation works once, for [`INVITATION_DAYS`] days.
    ///
    /// # Errors
    /// [`ConsentError::Forbidden`] for anyone but a patient acting for themselves;
    /// [`ConsentError::Input`] for a scope that does not fit the rules.
    pub async fn invite_proxy(
        &self,
        actor: &Actor,
        inv: ProxyInvitation,
        request_id: Option<&str>,
    ) -> Result<Grant, ConsentError> {
        let Actor::Patient { account, patient } = actor else {
            return Err(ConsentError::Forbidden);
        };
        self.invite(*patient, GrantMaker::Patient(*account), inv, request_id)
            .await
    }

    /// Front desk, with the patient present (someone who cannot use a computer): records a
    /// proxy invitation for `patient`, a chart of the staff member's organisation. The grant
    /// is marked as made by staff; everything else is as when the patient invites.
    ///
    /// # Errors
    /// [`ConsentError::Forbidden`] for roles that do not prove identities;
    /// [`ConsentError::NotFound`] for a chart that is not the organisation's.
    pub async fn record_proxy_for(
        &self,
        actor: &Actor,
        patient: crate::ids::PatientId,
        inv: ProxyInvitation,
        request_id: Option<&str>,
    ) -> Result<Grant, ConsentError> {
        let now = self.p.clock.now();
        let Actor::Staff {
            account,
            organization,
            ..
        } = actor
        else {
            return Err(ConsentError::Forbidden);
        };
        let desk = crate::access::Target::Organization {
            organization: *organization,
        };
        if !crate::access::decide(actor, Action::ProofIdentity, desk, now).is_allowed() {
            return Err(ConsentError::Forbidden);
        }
        let chart = self
            .p
            .patients
            .find(patient)
            .await?
            .filter(|c| c.organization_id == *organization)
            .ok_or(ConsentError::NotFound)?;
        self.invite(chart.id, GrantMaker::Staff(*account), inv, request_id)
            .await
    }

    async fn invite(
        &self,
        patient: crate::ids::PatientId,
        made_by: GrantMaker,
        inv: ProxyInvitation,
        request_id: Option<&str>,
    ) -> Result<Grant, ConsentError> {
        let now = self.p.clock.now();
        let tz = self.zone_of(patient).await?;
        let scope = inv.scope.scope(now, tz).map_err(ConsentError::Input)?;
        let token = self.p.secrets.new_token();
        let grant = Grant {
            id: GrantId::generate(self.p.ids.as_ref()),
            patient,
            grantee: Grantee::Proxy {
                account: None,
                email: inv.email.clone(),
                relationship: inv.relationship,
            },
            scope,
            state: GrantState::Pending {
                invited_at: now,
                expires: now + Duration::days(INVITATION_DAYS),
            },
            note: inv.note,
            made_by,
            made_at: now,
        };
        self.p
            .grants
            .create(&grant, Some(self.p.secrets.digest(&token)))
            .await?;
        // A mail that cannot be handed over leaves the invitation pending (the mailer adapter
        // logs the failure without the address); the patient sees it and may invite again.
        let _ = self
            .p
            .mailer
            .send(invitation(&inv.email, &token, &self.p.public_url))
            .await;
        let (GrantMaker::Patient(by) | GrantMaker::Staff(by)) = made_by;
        self.audit(AuthEventKind::ConsentInvited, Some(by), request_id)
            .await?;
        Ok(grant)
    }

    /// The signed-in `account` accepts the invitation of `token`: it must be the address
    /// invited, and not the patient's own.
    ///
    /// # Errors
    /// See [`AcceptError`].
    pub async fn accept(
        &self,
        account: &Account,
        token: &SecretText,
        request_id: Option<&str>,
    ) -> Result<Grant, AcceptError> {
        let now = self.p.clock.now();
        let digest = self.p.secrets.digest(token);
        let grant = self
            .p
            .grants
            .by_token(&digest)
            .await?
            .filter(|g| matches!(g.state_at(now), GrantState::Pending { .. }))
            .ok_or(AcceptError::InvalidOrExpired)?;
        let Grantee::Proxy { email, .. } = &grant.grantee else {
            return Err(AcceptError::InvalidOrExpired);
        };
        let own = matches!(account.chart, crate::account::ChartLink::Linked { patient } if patient == grant.patient);
        if *email != account.email || own {
            return Err(AcceptError::WrongAccount);
        }
        if !self
            .p
            .grants
            .accept(grant.id, account.id, now, grant.scope.valid_until)
            .await?
        {
            return Err(AcceptError::InvalidOrExpired);
        }
        self.audit(AuthEventKind::ConsentAccepted, Some(account.id), request_id)
            .await?;
        self.p
            .grants
            .find(grant.id)
            .await?
            .ok_or(AcceptError::InvalidOrExpired)
    }

    /// Patient: every grant of their record, newest first, with its state now.
    ///
    /// # Errors
    /// [`ConsentError::Forbidden`] for anyone but a patient acting for themselves.
    pub async fn grants(&self, actor: &Actor) -> Result<Vec<GrantView>, ConsentError> {
        let Actor::Patient { patient, .. } = actor else {
            return Err(ConsentError::Forbidden);
        };
        let now = self.p.clock.now();
        Ok(self
            .p
            .grants
            .for_patient(*patient)
            .await?
            .into_iter()
            .map(|grant| GrantView {
                state: grant.state_at(now),
                grant,
            })
            .collect())
    }

    /// Proxy: the grants `account` accepted that are in force now (whose records it may
    /// open), newest first.
    ///
    /// # Errors
    /// `Repo` when storage fails.
    pub async fn acting_for(
        &self,
        account: crate::ids::AccountId,
    ) -> Result<Vec<GrantView>, RepoError> {
        let now = self.p.clock.now();
        Ok(self
            .p
            .grants
            .for_grantee(account)
            .await?
            .into_iter()
            .filter(|g| g.actor(Some(account), now).is_some())
            .map(|grant| GrantView {
                state: grant.state_at(now),
                grant,
            })
            .collect())
    }

    /// Proxy: whose records `account` may open now — each grant in force with the name of
    /// the person it is for, newest first. What the proxy switcher offers.
    ///
    /// # Errors
    /// `Repo` when storage fails.
    pub async fn proxy_choices(
        &self,
        account: crate::ids::AccountId,
    ) -> Result<Vec<ProxyChoice>, RepoError> {
        let mut out = Vec::new();
        for view in self.acting_for(account).await? {
            if let Some(chart) = self.p.patients.find(view.grant.patient).await? {
                out.push(ProxyChoice {
                    name: chart.name,
                    grant: view,
                });
            }
        }
        Ok(out)
    }

    /// Proxy: what `account` did on other people's behalf, newest first (at most `limit`),
    /// each with the name of the person whose record it was.
    ///
    /// # Errors
    /// `Repo` when storage fails.
    pub async fn on_behalf(
        &self,
        account: crate::ids::AccountId,
        limit: u32,
    ) -> Result<
        Vec<(
            crate::audit::AccessEntry,
            Option<crate::patient::PersonName>,
        )>,
        RepoError,
    > {
        let entries = self.p.log.on_behalf(account, limit).await?;
        let mut names = std::collections::BTreeMap::new();
        for grant in self.p.grants.for_grantee(account).await? {
            if let Some(chart) = self.p.patients.find(grant.patient).await? {
                names.insert(grant.id, chart.name);
            }
        }
        Ok(entries
            .into_iter()
            .map(|e| {
                let name = e.accessor.grant.and_then(|g| names.get(&g).cloned());
                (e, name)
            })
            .collect())
    }

    /// The actor `account` is when it opens the record of grant `id`: only while that grant
    /// is active, in force, and theirs. Read at every request — nothing is remembered, so a
    /// revoked or narrowed grant takes effect at once. A proxy whose grant ended (revoked or
    /// expired) is refused, and the attempt is written to the patient's access history.
    ///
    /// # Errors
    /// `Repo` when storage fails.
    pub async fn actor_for(
        &self,
        account: crate::ids::AccountId,
        id: GrantId,
        request_id: Option<&str>,
    ) -> Result<Option<Actor>, RepoError> {
        let now = self.p.clock.now();
        let Some(grant) = self.p.grants.find(id).await? else {
            return Ok(None);
        };
        if let Some(actor) = grant.actor(Some(account), now) {
            // A guardian sees what the organisation's policy leaves for the patient's age.
            if let Some(actor) = self.with_guardian_policy(&grant, actor).await? {
                return Ok(Some(actor));
            }
        }
        let was_theirs = match grant.grantee {
            Grantee::Proxy {
                account: Some(a), ..
            }
            | Grantee::Guardian { account: a, .. } => a == account,
            Grantee::Proxy { account: None, .. } | Grantee::ShareLink { .. } => false,
        };
        if was_theirs {
            self.p
                .log
                .record(crate::audit::AccessEvent {
                    at: now,
                    actor: crate::audit::ActorRef {
                        kind: "proxy",
                        account: Some(account),
                        role: None,
                        grant: Some(id),
                    },
                    patient: Some(grant.patient),
                    action: Action::ViewChart,
                    step: None,
                    export: None,
                    record_kind: None,
                    record: None,
                    outcome: crate::audit::Outcome::Denied,
                    request_id: request_id.map(str::to_owned),
                })
                .await?;
        }
        Ok(None)
    }

    /// Patient: changes what one of their grants allows (narrower or wider); it takes
    /// effect at the grantee's next request.
    ///
    /// # Errors
    /// See [`ConsentError`].
    pub async fn change_scope(
        &self,
        actor: &Actor,
        id: GrantId,
        choice: &ScopeChoice,
        request_id: Option<&str>,
    ) -> Result<Grant, ConsentError> {
        let (account, grant) = self.own_grant(actor, id).await?;
        let now = self.p.clock.now();
        let tz = self.zone_of(grant.patient).await?;
        let mut scope = choice.scope(now, tz).map_err(ConsentError::Input)?;
        // The period keeps its start: a change does not restart the grant.
        scope.valid_from = grant.scope.valid_from;
        if !self.p.grants.set_scope(id, &scope).await? {
            return Err(ConsentError::Ended);
        }
        self.audit(AuthEventKind::ConsentChanged, Some(account), request_id)
            .await?;
        self.p.grants.find(id).await?.ok_or(ConsentError::NotFound)
    }

    /// Patient: ends one of their grants at once.
    ///
    /// # Errors
    /// See [`ConsentError`].
    pub async fn revoke(
        &self,
        actor: &Actor,
        id: GrantId,
        request_id: Option<&str>,
    ) -> Result<(), ConsentError> {
        let (account, _) = self.own_grant(actor, id).await?;
        if !self
            .p
            .grants
            .revoke(id, account, self.p.clock.now())
            .await?
        {
            return Err(ConsentError::Ended);
        }
        self.audit(AuthEventKind::ConsentRevoked, Some(account), request_id)
            .await?;
        Ok(())
    }

    /// The patient's own grant `id` (not revoked), and the patient's account.
    async fn own_grant(
        &self,
        actor: &Actor,
        id: GrantId,
    ) -> Result<(crate::ids::AccountId, Grant), ConsentError> {
        let Actor::Patient { account, patient } = actor else {
            return Err(ConsentError::Forbidden);
        };
        let grant = self
            .p
            .grants
            .find(id)
            .await?
            .filter(|g| g.patient == *patient)
            .ok_or(ConsentError::NotFound)?;
        if matches!(grant.state, GrantState::Revoked { .. }) {
            return Err(ConsentError::Ended);
        }
        if matches!(grant.grantee, Grantee::Guardian { .. }) {
            return Err(ConsentError::ClinicOnly);
        }
        Ok((*account, grant))
    }
}

/// The invitation: nothing about the patient or their health.
fn invitation(to: &Email, token: &SecretText, public_url: &str) -> OutgoingEmail {
    OutgoingEmail {
        to: to.clone(),
        subject: "You are invited to a patient portal".into(),
        body: format!(
            "Hello,\n\nSomeone invited you to see part of their health record in a patient portal.\n\
             To accept, sign in (or create an account with this email address) and open:\n\
             {public_url}/grants/accept?token={}\n\nThe invitation works once, for {INVITATION_DAYS} days. \
             If you do not know why you got this, ignore it.\n",
            token.expose()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()
    }

    #[test]
    fn a_scope_is_read_from_codes_and_downloading_implies_viewing() {
        let s = ScopeChoice::from_codes(["observation"], ["export"], ["hiv"], None).unwrap();
        assert_eq!(s.actions, [Action::Read, Action::Export].into());
        assert!(s.labels.contains(SensitivityLabel::Hiv));
        let scope = s.scope(now(), chrono_tz::Tz::UTC).unwrap();
        assert_eq!(
            scope.valid_until,
            Utc.with_ymd_and_hms(2027, 12, 5, 0, 0, 0).unwrap(),
            "a year by default, to the end of the day"
        );
        let refused = |k: &[&str], a: &[&str], l: &[&str]| {
            ScopeChoice::from_codes(
                k.iter().copied(),
                a.iter().copied(),
                l.iter().copied(),
                None,
            )
            .unwrap_err()
        };
        assert_eq!(refused(&[], &["read"], &[]), ScopeError::NoKinds);
        assert_eq!(refused(&["nonsense"], &["read"], &[]), ScopeError::Kind);
        assert_eq!(refused(&["observation"], &[], &[]), ScopeError::Action);
        assert_eq!(
            refused(&["observation"], &["release"], &[]),
            ScopeError::Action,
            "releasing is not a patient's to give"
        );
        let acting =
            ScopeChoice::from_codes(["observation"], ["book", "pay_bills"], [], None).unwrap();
        assert_eq!(
            acting.actions,
            [Action::Read, Action::Book, Action::PayBills].into(),
            "acting for the patient, and viewing with it"
        );
        assert_eq!(
            refused(&["observation"], &["read"], &["x"]),
            ScopeError::Label
        );
    }

    #[test]
    fn the_end_date_lies_after_today_and_at_most_five_years_ahead() {
        let with = |d: &str| {
            ScopeChoice::from_codes(["observation"], ["read"], [], Some(d))
                .and_then(|s| s.scope(now(), chrono_tz::Tz::UTC))
        };
        assert!(with("2026-12-05").is_ok());
        assert!(with("2031-12-04").is_ok());
        assert_eq!(with("2031-12-05").unwrap_err(), ScopeError::Until);
        assert_eq!(with("2026-12-04").unwrap_err(), ScopeError::Until);
        assert_eq!(with("5 Dec").unwrap_err(), ScopeError::Until);
    }

    #[test]
    fn the_last_day_ends_at_midnight_in_the_clinics_zone() {
        let s = ScopeChoice::from_codes(["observation"], ["read"], [], Some("2026-12-10")).unwrap();
        let scope = s.scope(now(), chrono_tz::America::New_York).unwrap();
        assert_eq!(
            scope.valid_until,
            Utc.with_ymd_and_hms(2026, 12, 11, 5, 0, 0).unwrap(),
            "midnight in Boston is 05:00 UTC in winter"
        );
    }
}
