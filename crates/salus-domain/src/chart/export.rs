//! Starting an export of a chart (the reading out is `crate::export`).

use super::*;

/// Why an export did not start.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// No such chart, or not the actor's to export (one answer for both).
    #[error("not found")]
    NotFound,
    /// The actor's account is not connected to a chart yet.
    #[error("Your account is not connected to a medical record yet.")]
    NoChart,
    /// Exports need the password entered within the last few minutes.
    #[error("enter your password again to download records")]
    ReauthenticationRequired,
    /// The audit entry could not be written, so nothing is read out.
    #[error("the audit log is unavailable")]
    AuditUnavailable,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<ReadError> for ExportError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::NotFound => Self::NotFound,
            ReadError::NoChart => Self::NoChart,
            ReadError::AuditUnavailable => Self::AuditUnavailable,
            ReadError::Repo(r) => Self::Repo(r),
        }
    }
}

impl RecordsService {
    /// Starts an export of a chart (the actor's own when `req.patient` is `None`): checks
    /// that the person proved who they are within [`crate::account::REAUTH_WINDOW_MINUTES`]
    /// (a share link proves itself at every request), that the actor
    /// may export the chart, and writes the audit entry naming the format. The answer reads
    /// the records out batch by batch under the same rules as viewing.
    ///
    /// # Errors
    /// See [`ExportError`].
    pub async fn export(
        &self,
        actor: &Actor,
        req: ExportRequest,
        request_id: Option<&str>,
    ) -> Result<ChartExport, ExportError> {
        let now = self.now();
        // A session re-confirms the person before a download; a share link proves itself
        // (its token, its passcode) at every request and has no session.
        let link = matches!(actor, Actor::ShareLink { .. });
        if !link && !crate::account::proved_recently(req.authenticated_at, now) {
            return Err(ExportError::ReauthenticationRequired);
        }
        let mut a = Audit {
            actor,
            action: Action::Export,
            export: Some(req.format),
            patient: req.patient.or(actor.own_chart()),
            // A printout of one kind names it (in the audit, and in the decision).
            kind: match req.kinds.as_slice() {
                [one] => Some(*one),
                _ => None,
            },
            record: None,
            request_id,
        };
        let chart = self.authorised_chart(&mut a, req.patient).await?;
        let (Some(patient), Some(organization)) = (
            self.p.patients.find(chart.id).await?,
            self.organization(chart.organization_id).await?,
        ) else {
            return Ok(self.refuse(&a, Outcome::NotFound).await?);
        };
        let kinds: Vec<RecordKind> = EXPORT_ORDER
            .into_iter()
            .filter(|k| req.kinds.is_empty() || req.kinds.contains(k))
            .filter(|k| {
                decide(
                    actor,
                    Action::Export,
                    Target::Kind {
                        patient: chart.id,
                        organization: chart.organization_id,
                        kind: *k,
                    },
                    now,
                )
                .is_allowed()
            })
            .collect();
        // The patient's own FHIR export says who else may see the chart: each grant in
        // force, as a `Consent` resource. Nobody else's export carries them.
        let consents = match (actor, req.format) {
            (Actor::Patient { patient: own, .. }, ExportFormat::Fhir) if *own == chart.id => self
                .p
                .grants
                .for_patient(chart.id)
                .await?
                .into_iter()
                .filter(|g| matches!(g.state_at(now), crate::consent::GrantState::Active { .. }))
                .collect(),
            _ => Vec::new(),
        };
        // Appointments go with a FHIR export by whoever may book for the chart (the patient,
        // a proxy with that grant); share links and staff exports carry none.
        let appointments = match req.format {
            ExportFormat::Fhir
                if decide(
                    actor,
                    Action::Book,
                    Target::Chart {
                        patient: chart.id,
                        organization: chart.organization_id,
                    },
                    now,
                )
                .is_allowed()
                    && !matches!(actor, Actor::Staff { .. }) =>
            {
                self.appointments_of(&patient).await?
            }
            _ => Vec::new(),
        };
        self.audit(&a, Outcome::Allowed).await?;
        Ok(ChartExport::new(
            self.p.records.clone(),
            actor.clone(),
            patient,
            organization,
            now,
            RecordQuery {
                released_by: Self::released_by(actor, now),
                ..RecordQuery::default()
            },
            kinds,
        )
        .with_consents(consents)
        .with_appointments(appointments))
    }

    /// A chart's appointments with their visit types', places' and providers' names.
    async fn appointments_of(
        &self,
        chart: &crate::patient::Patient,
    ) -> Result<Vec<crate::export::ExportedAppointment>, crate::repo::RepoError> {
        let s = &self.p.appointments;
        let all = s.appointments_of(chart.id).await?;
        if all.is_empty() {
            return Ok(Vec::new());
        }
        let kinds = s.visit_types_of(chart.organization_id).await?;
        let places = s.locations_of(chart.organization_id).await?;
        let providers = s.providers_of(chart.organization_id).await?;
        Ok(all
            .into_iter()
            .map(|a| {
                let kind = kinds.iter().find(|k| k.id == a.visit_type);
                crate::export::ExportedAppointment {
                    visit_type: kind.map(|k| k.name.clone()).unwrap_or_default(),
                    minutes: kind.map_or(0, |k| k.minutes),
                    location: places.iter().find(|l| l.id == a.location).cloned(),
                    provider: providers
                        .iter()
                        .find(|p| p.id == a.provider)
                        .map(|p| p.name.clone()),
                    appointment: a,
                }
            })
            .collect())
    }
}
