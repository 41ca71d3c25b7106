//! Guardians of minors: the front desk records a parent or legal guardian for a patient under
//! 18 after checking documents; the guardian acts like a proxy for the whole record, minus what
//! the organisation's [`GuardianPolicy`] hides from the guardian of a 12–17-year-old, and the
//! guardianship ends by itself at the patient's 18th birthday (as the `Clock` says), after
//! which the patient is told by email that they may claim their own account.

use super::service::{GRANTABLE_ACTIONS, midnight_after};
use super::{ConsentService, Grant, GrantMaker, GrantState, GrantView, Grantee, ScopeError};
use crate::access::{Action, Actor, GrantScope, Target, decide};
use crate::account::{AuthEventKind, OutgoingEmail, Role};
use crate::ids::{GrantId, PatientId};
use crate::organization::{GuardianPolicy, coming_of_age};
use crate::patient::Patient;
use crate::record::{RecordKind, SensitivityLabel, SensitivityLabels};
use crate::repo::RepoError;
use crate::text::{Email, GrantText};

/// The front desk's record of a guardian, as typed.
#[derive(Debug, Clone)]
pub struct GuardianRequest {
    /// The address of the guardian's own account.
    pub email: Email,
    pub relationship: Option<GrantText>,
    pub note: Option<GrantText>,
}

impl GuardianRequest {
    /// A request from the fields as typed.
    ///
    /// # Errors
    /// [`ScopeError::Email`] or [`ScopeError::Text`].
    pub fn from_fields(email: &str, relationship: &str, note: &str) -> Result<Self, ScopeError> {
        let email = Email::parse(email).map_err(|_| ScopeError::Email)?;
        Ok(Self {
            email,
            relationship: super::service::optional_text(relationship)?,
            note: super::service::optional_text(note)?,
        })
    }
}

/// A chart's guardianships, as the front desk sees them.
#[derive(Debug, Clone)]
pub struct Guardians {
    pub chart: Patient,
    pub grants: Vec<GrantView>,
    /// Under 18 today, in the clinic's zone: a guardian may be recorded.
    pub minor: bool,
}

/// Why a guardian use case changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum GuardianError {
    #[error("Only the front desk and the organisation's administrators do this.")]
    Forbidden,
    /// No such chart in the organisation (one answer for missing and another's).
    #[error("There is no such patient in your organisation.")]
    NotFound,
    #[error(
        "This patient is 18 or older: an adult decides on their own who may see their records."
    )]
    NotAMinor,
    #[error(
        "No confirmed patient account uses this email address. The guardian creates an account and confirms the address first."
    )]
    NoAccount,
    #[error("{0}")]
    Input(ScopeError),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl GuardianError {
    /// A stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::NotAMinor => "not_a_minor",
            Self::NoAccount => "no_such_account",
            Self::Input(e) => e.code(),
            Self::Repo(_) => "unavailable",
        }
    }
}

/// Every sensitivity label (a guardianship covers them all; the policy takes some away).
fn all_labels() -> SensitivityLabels {
    SensitivityLabel::ALL
        .iter()
        .fold(SensitivityLabels::empty(), |acc, l| acc.with(*l))
}

impl ConsentService {
    /// The chart `patient` when `actor` is front desk (or an administrator) of its organisation.
    async fn desk_chart(
        &self,
        actor: &Actor,
        patient: PatientId,
    ) -> Result<Patient, GuardianError> {
        let Actor::Staff { organization, .. } = actor else {
            return Err(GuardianError::Forbidden);
        };
        let desk = Target::Organization {
            organization: *organization,
        };
        if !decide(actor, Action::ProofIdentity, desk, self.p.clock.now()).is_allowed() {
            return Err(GuardianError::Forbidden);
        }
        self.p
            .patients
            .find(patient)
            .await?
            .filter(|c| c.organization_id == *organization)
            .ok_or(GuardianError::NotFound)
    }

    /// Front desk, after checking documents: records the holder of `req.email`'s account as
    /// the guardian of `patient`, a minor of the organisation. In force at once, until the
    /// patient's 18th birthday (midnight in the clinic's zone). The guardian is emailed that
    /// a clinic recorded them — without the patient's name.
    ///
    /// # Errors
    /// See [`GuardianError`].
    pub async fn establish_guardian(
        &self,
        actor: &Actor,
        patient: PatientId,
        req: GuardianRequest,
        request_id: Option<&str>,
    ) -> Result<Grant, GuardianError> {
        let chart = self.desk_chart(actor, patient).await?;
        let Some(staff) = actor.account() else {
            return Err(GuardianError::Forbidden);
        };
        let now = self.p.clock.now();
        let tz = self.zone_of(chart.id).await?;
        let today = now.with_timezone(&tz).date_naive();
        let adult_on = coming_of_age(chart.birth_date).ok_or(GuardianError::NotAMinor)?;
        if adult_on <= today {
            return Err(GuardianError::NotAMinor);
        }
        let guardian = self
            .p
            .accounts
            .find_by_email(&req.email)
            .await?
            .filter(|a| {
                a.role == Role::Patient
                    && matches!(a.state, crate::account::AccountState::Active { .. })
                    && a.chart != (crate::account::ChartLink::Linked { patient: chart.id })
            })
            .ok_or(GuardianError::NoAccount)?;
        let until = midnight_after(adult_on - chrono::Duration::days(1), tz)
            .ok_or(GuardianError::NotAMinor)?;
        let grant = Grant {
            id: GrantId::generate(self.p.ids.as_ref()),
            patient: chart.id,
            grantee: Grantee::Guardian {
                account: guardian.id,
                email: guardian.email.clone(),
                relationship: req.relationship,
            },
            scope: GrantScope {
                kinds: RecordKind::ALL.iter().copied().collect(),
                actions: GRANTABLE_ACTIONS.iter().copied().collect(),
                labels: all_labels(),
                valid_from: now,
                valid_until: until,
            },
            state: GrantState::Active {
                accepted_at: now,
                until,
            },
            note: req.note,
            made_by: GrantMaker::Staff(staff),
            made_at: now,
        };
        self.p.grants.create(&grant, None).await?;
        let _ = self
            .p
            .mailer
            .send(OutgoingEmail {
                to: guardian.email.clone(),
                subject: "You were recorded as a guardian".into(),
                body: format!(
                    "Hello,\n\nA clinic recorded you as the parent or guardian of one of its patients in the patient portal.\n\
                     Sign in at {}/login and choose \"Shared with me\" to open their record.\n\
                     If you did not expect this, call the clinic.\n",
                    self.p.public_url
                ),
            })
            .await;
        self.audit(AuthEventKind::GuardianRecorded, Some(staff), request_id)
            .await?;
        Ok(grant)
    }

    /// Front desk: the guardianships of a chart of their organisation, newest first, and
    /// whether the patient is a minor today (a guardian may be recorded).
    ///
    /// # Errors
    /// See [`GuardianError`].
    pub async fn guardians_of(
        &self,
        actor: &Actor,
        patient: PatientId,
    ) -> Result<Guardians, GuardianError> {
        let chart = self.desk_chart(actor, patient).await?;
        let now = self.p.clock.now();
        // The desk sees who the chart is: a look at it, in the patient's access history.
        self.p
            .log
            .record(crate::audit::AccessEvent {
                at: now,
                actor: actor.into(),
                patient: Some(chart.id),
                action: Action::ViewDemographics,
                step: None,
                export: None,
                record_kind: None,
                record: None,
                outcome: crate::audit::Outcome::Allowed,
                request_id: None,
            })
            .await?;
        let grants = self
            .p
            .grants
            .for_patient(chart.id)
            .await?
            .into_iter()
            .filter(|g| matches!(g.grantee, Grantee::Guardian { .. }))
            .map(|grant| GrantView {
                state: grant.state_at(now),
                grant,
            })
            .collect();
        let tz = self.zone_of(chart.id).await?;
        let today = now.with_timezone(&tz).date_naive();
        let minor = coming_of_age(chart.birth_date).is_some_and(|adult| adult > today);
        Ok(Guardians {
            chart,
            grants,
            minor,
        })
    }

    /// Front desk: ends a guardianship of a chart of their organisation at once (custody
    /// changed, or it was recorded by mistake).
    ///
    /// # Errors
    /// See [`GuardianError`]; `NotFound` for a grant that is not a live guardianship of it.
    pub async fn end_guardianship(
        &self,
        actor: &Actor,
        patient: PatientId,
        id: GrantId,
        request_id: Option<&str>,
    ) -> Result<(), GuardianError> {
        let chart = self.desk_chart(actor, patient).await?;
        let Some(staff) = actor.account() else {
            return Err(GuardianError::Forbidden);
        };
        let grant = self
            .p
            .grants
            .find(id)
            .await?
            .filter(|g| g.patient == chart.id && matches!(g.grantee, Grantee::Guardian { .. }))
            .ok_or(GuardianError::NotFound)?;
        if !self
            .p
            .grants
            .revoke(grant.id, staff, self.p.clock.now())
            .await?
        {
            return Err(GuardianError::NotFound);
        }
        self.audit(AuthEventKind::ConsentRevoked, Some(staff), request_id)
            .await?;
        Ok(())
    }

    /// Staff: their organisation's guardian policy.
    ///
    /// # Errors
    /// `Forbidden` for anyone but staff; `NotFound` when the organisation is gone.
    pub async fn guardian_policy(&self, actor: &Actor) -> Result<GuardianPolicy, GuardianError> {
        let Actor::Staff { organization, .. } = actor else {
            return Err(GuardianError::Forbidden);
        };
        self.p
            .organizations
            .find(*organization)
            .await?
            .map(|o| o.guardian_policy)
            .ok_or(GuardianError::NotFound)
    }

    /// Administrator: sets what guardians of the organisation's 12–17-year-olds do not see.
    /// It counts from each guardian's next request.
    ///
    /// # Errors
    /// `Forbidden` for anyone but the organisation's administrators.
    pub async fn set_guardian_policy(
        &self,
        actor: &Actor,
        policy: GuardianPolicy,
        request_id: Option<&str>,
    ) -> Result<(), GuardianError> {
        let Actor::Staff {
            organization,
            account,
            ..
        } = actor
        else {
            return Err(GuardianError::Forbidden);
        };
        let business = Target::Organization {
            organization: *organization,
        };
        if !decide(actor, Action::ManageTeam, business, self.p.clock.now()).is_allowed() {
            return Err(GuardianError::Forbidden);
        }
        if !self
            .p
            .organizations
            .set_guardian_policy(*organization, policy)
            .await?
        {
            return Err(GuardianError::NotFound);
        }
        self.audit(
            AuthEventKind::GuardianPolicyChanged,
            Some(*account),
            request_id,
        )
        .await?;
        Ok(())
    }

    /// A guardian's actor with the organisation's policy applied for the patient's age today:
    /// the labels the policy hides from a 12–17-year-old's guardian are taken out of the scope.
    /// Any other actor is returned as it is.
    pub(super) async fn with_guardian_policy(
        &self,
        grant: &Grant,
        actor: Actor,
    ) -> Result<Option<Actor>, RepoError> {
        let (
            Grantee::Guardian { .. },
            Actor::Proxy {
                account,
                grant: id,
                patient,
                mut scope,
            },
        ) = (&grant.grantee, actor.clone())
        else {
            return Ok(Some(actor));
        };
        let Some(chart) = self.p.patients.find(patient).await? else {
            return Ok(None);
        };
        let Some(org) = self.p.organizations.find(chart.organization_id).await? else {
            return Ok(None);
        };
        let today = self
            .p
            .clock
            .now()
            .with_timezone(&org.time_zone)
            .date_naive();
        let allowed = org.guardian_policy.labels_for(chart.birth_date, today);
        scope.labels = scope
            .labels
            .iter()
            .filter(|l| allowed.contains(*l))
            .fold(SensitivityLabels::empty(), |acc, l| acc.with(l));
        Ok(Some(Actor::Proxy {
            account,
            grant: id,
            patient,
            scope,
        }))
    }

    /// Tells each patient whose guardianship ended (they came of age) that they may claim
    /// their own account — at the chart's email address and at any account already connected
    /// to it; nothing about their health. Each ending is told once, whichever node runs this.
    /// Answers how many endings were handled.
    ///
    /// # Errors
    /// `Repo` when storage fails (what was handled stays handled).
    pub async fn tell_patients_who_came_of_age(&self) -> Result<usize, RepoError> {
        let now = self.p.clock.now();
        let ended = self.p.grants.guardianships_ended(now, 100).await?;
        let mut handled = 0;
        for grant in ended {
            if !self.p.grants.mark_end_notified(grant.id, now).await? {
                continue;
            }
            handled += 1;
            let Some(chart) = self.p.patients.find(grant.patient).await? else {
                continue;
            };
            let mut to: Vec<Email> = chart.contact.email.iter().cloned().collect();
            for account in self.p.accounts.linked_to(chart.id).await? {
                if !to.contains(&account.email) {
                    to.push(account.email);
                }
            }
            for address in to {
                let _ = self
                    .p
                    .mailer
                    .send(OutgoingEmail {
                        to: address,
                        subject: "Your patient portal account is yours now".into(),
                        body: format!(
                            "Hello,\n\nNow that you are 18, the access your parent or guardian had to your health record in the patient portal has ended.\n\
                             You decide from now on who may see your records. If you have no account yet, create one at {}/register \
                             and ask your clinic to confirm who you are; if you have one, sign in at {}/login.\n",
                            self.p.public_url, self.p.public_url
                        ),
                    })
                    .await;
            }
        }
        Ok(handled)
    }
}
