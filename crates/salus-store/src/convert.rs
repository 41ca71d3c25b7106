//! Rows to domain values and back. A row that does not parse is `RepoError::Corrupt`,
//! naming the column, never the value.

use crate::entity::{
    clinical_record, organization, organization_feature, patient, practitioner,
    provider_organization, release_rule,
};
use salus_domain::organization::{Organization, PortalFeature, ReleasePolicy, ReleaseRule};
use salus_domain::patient::{AdministrativeSex, ContactDetails, Patient, PersonName};
use salus_domain::providers::{Practitioner, ProviderOrganization};
use salus_domain::record::{
    ClinicalRecord, RecordKind, RecordMeta, RecordSource, ReleaseState, SensitivityLabel,
    SensitivityLabels,
};
use salus_domain::text::{
    Address, DisplayName, Email, Mrn, OrgName, Phone, Slug, SourceIdentifier,
};
use salus_domain::{OrganizationId, PatientId, RecordId, RepoError};
use sea_orm::ActiveValue::Set;

fn corrupt<E>(column: &'static str) -> impl FnOnce(E) -> RepoError {
    move |_| RepoError::Corrupt(column)
}

fn opt<T, E>(
    v: Option<String>,
    parse: impl Fn(&str) -> Result<T, E>,
    column: &'static str,
) -> Result<Option<T>, RepoError> {
    v.map(|s| parse(&s).map_err(corrupt(column))).transpose()
}

pub(crate) const SCOPE_KIND: &str = "kind";
pub(crate) const SCOPE_LABEL: &str = "label";

pub(crate) fn rule_to_row(rule: ReleaseRule) -> (&'static str, Option<i32>) {
    match rule {
        ReleaseRule::Immediate => ("immediate", None),
        ReleaseRule::AfterHours { hours } => (
            "after_hours",
            Some(i32::try_from(hours).unwrap_or(i32::MAX)),
        ),
        ReleaseRule::HeldForManualRelease => ("held", None),
        ReleaseRule::NeverOnline => ("never_online", None),
    }
}

fn rule_from_row(r: &release_rule::Model) -> Result<ReleaseRule, RepoError> {
    Ok(match (r.rule.as_str(), r.hours) {
        ("immediate", _) => ReleaseRule::Immediate,
        ("after_hours", Some(h)) => ReleaseRule::AfterHours {
            hours: u32::try_from(h).map_err(corrupt("release_rules.hours"))?,
        },
        ("held", _) => ReleaseRule::HeldForManualRelease,
        ("never_online", _) => ReleaseRule::NeverOnline,
        _ => return Err(RepoError::Corrupt("release_rules.rule")),
    })
}

pub(crate) fn organization_from_rows(
    org: organization::Model,
    features: &[organization_feature::Model],
    rules: &[release_rule::Model],
) -> Result<Organization, RepoError> {
    let features = features
        .iter()
        .filter(|f| f.organization_id == org.id)
        .map(|f| PortalFeature::from_code(&f.feature).ok_or(RepoError::Corrupt("feature")))
        .collect::<Result<_, _>>()?;
    let mut policy = ReleasePolicy::default();
    for r in rules.iter().filter(|r| r.organization_id == org.id) {
        let rule = rule_from_row(r)?;
        policy = match r.scope.as_str() {
            SCOPE_KIND => policy.with_kind(
                RecordKind::from_code(&r.subject)
                    .ok_or(RepoError::Corrupt("release_rules.subject"))?,
                rule,
            ),
            SCOPE_LABEL => policy.with_label(
                SensitivityLabel::from_code(&r.subject)
                    .ok_or(RepoError::Corrupt("release_rules.subject"))?,
                rule,
            ),
            _ => return Err(RepoError::Corrupt("release_rules.scope")),
        };
    }
    Ok(Organization {
        id: OrganizationId::from_uuid(org.id),
        name: OrgName::parse(&org.name).map_err(corrupt("organizations.name"))?,
        slug: Slug::parse(&org.slug).map_err(corrupt("organizations.slug"))?,
        features,
        release_policy: policy,
        phone: opt(org.phone, Phone::parse, "organizations.phone")?,
        time_zone: org
            .time_zone
            .parse()
            .map_err(|_| RepoError::Corrupt("organizations.time_zone"))?,
        guardian_policy: salus_domain::organization::GuardianPolicy {
            hidden_from_teens: u8::try_from(org.guardian_hidden_labels)
                .ok()
                .and_then(|b| SensitivityLabels::from_bits(b).ok())
                .ok_or(RepoError::Corrupt("organizations.guardian_hidden_labels"))?,
        },
    })
}

pub(crate) fn patient_from_row(p: patient::Model) -> Result<Patient, RepoError> {
    Ok(Patient {
        id: PatientId::from_uuid(p.id),
        organization_id: OrganizationId::from_uuid(p.organization_id),
        mrn: Mrn::parse(&p.mrn).map_err(corrupt("patients.mrn"))?,
        name: PersonName::new(&p.given_name, &p.family_name).map_err(corrupt("patients.name"))?,
        birth_date: p.birth_date,
        sex: AdministrativeSex::from_code(&p.sex).ok_or(RepoError::Corrupt("patients.sex"))?,
        contact: ContactDetails {
            phone: opt(p.phone, Phone::parse, "patients.phone")?,
            email: opt(p.email, Email::parse, "patients.email")?,
            address: opt(p.address, Address::parse, "patients.address")?,
        },
        source_identifier: opt(
            p.source_identifier,
            SourceIdentifier::parse,
            "patients.source",
        )?,
    })
}

pub(crate) fn patient_to_row(p: &Patient) -> patient::ActiveModel {
    patient::ActiveModel {
        id: Set(p.id.as_uuid()),
        organization_id: Set(p.organization_id.as_uuid()),
        mrn: Set(p.mrn.as_str().to_owned()),
        given_name: Set(p.name.given().to_owned()),
        family_name: Set(p.name.family().to_owned()),
        birth_date: Set(p.birth_date),
        sex: Set(p.sex.code().to_owned()),
        phone: Set(p.contact.phone.as_ref().map(|v| v.as_str().to_owned())),
        email: Set(p.contact.email.as_ref().map(|v| v.as_str().to_owned())),
        address: Set(p.contact.address.as_ref().map(|v| v.as_str().to_owned())),
        source_identifier: Set(p.source_identifier.as_ref().map(|v| v.as_str().to_owned())),
    }
}

pub(crate) fn practitioner_to_row(p: &Practitioner) -> practitioner::ActiveModel {
    practitioner::ActiveModel {
        id: Set(p.id.as_uuid()),
        organization_id: Set(p.organization_id.as_uuid()),
        name: Set(p.name.as_str().to_owned()),
        npi: Set(p.npi.clone()),
        source_identifier: Set(p.source_identifier.as_ref().map(|v| v.as_str().to_owned())),
    }
}

pub(crate) fn provider_org_to_row(p: &ProviderOrganization) -> provider_organization::ActiveModel {
    provider_organization::ActiveModel {
        id: Set(p.id.as_uuid()),
        organization_id: Set(p.organization_id.as_uuid()),
        name: Set(p.name.as_str().to_owned()),
        source_identifier: Set(p.source_identifier.as_ref().map(|v| v.as_str().to_owned())),
    }
}

fn display(v: &Option<DisplayName>) -> Option<String> {
    v.as_ref().map(|d| d.as_str().to_owned())
}

pub(crate) fn record_to_row(r: &ClinicalRecord) -> Result<clinical_record::ActiveModel, RepoError> {
    let (release_state, released_at) = match r.meta.release {
        ReleaseState::Released { at } => ("released", Some(at)),
        ReleaseState::Held => ("held", None),
        ReleaseState::NeverOnline => ("never_online", None),
    };
    let code = r.body.code();
    let detail = crate::body::write(&r.body)?;
    Ok(clinical_record::ActiveModel {
        id: Set(r.meta.id.as_uuid()),
        organization_id: Set(r.meta.organization_id.as_uuid()),
        patient_id: Set(r.meta.patient_id.as_uuid()),
        kind: Set(r.kind().code().to_owned()),
        encounter_id: Set(r.meta.encounter_id.map(|e| e.as_uuid())),
        sort_at: Set(r.sort_time()),
        code_system: Set(code.and_then(|c| c.system()).map(str::to_owned)),
        code: Set(code.and_then(|c| c.code()).map(str::to_owned)),
        title: Set(r.body.title().to_owned()),
        status: Set(r.body.status().to_owned()),
        source_author: Set(display(&r.meta.source.author)),
        source_performer: Set(display(&r.meta.source.performer)),
        source_organization: Set(display(&r.meta.source.organization)),
        source_outside: Set(r.meta.source.from_outside),
        source_identifier: Set(r
            .meta
            .source_identifier
            .as_ref()
            .map(|s| s.as_str().to_owned())),
        sensitivity: Set(i16::from(r.meta.sensitivity.bits())),
        release_state: Set(release_state.to_owned()),
        released_at: Set(released_at),
        filed_at: Set(r.meta.filed_at),
        detail: Set(detail),
    })
}

pub(crate) fn record_from_row(m: clinical_record::Stored) -> Result<ClinicalRecord, RepoError> {
    let body = crate::body::read(&m.detail)?;
    if body.kind().code() != m.kind {
        return Err(RepoError::Corrupt("clinical_records.kind"));
    }
    let release = match (m.release_state.as_str(), m.released_at) {
        ("released", Some(at)) => ReleaseState::Released { at },
        ("held", _) => ReleaseState::Held,
        ("never_online", _) => ReleaseState::NeverOnline,
        _ => return Err(RepoError::Corrupt("clinical_records.release_state")),
    };
    let bits = u8::try_from(m.sensitivity).map_err(corrupt("clinical_records.sensitivity"))?;
    Ok(ClinicalRecord {
        meta: RecordMeta {
            id: RecordId::from_uuid(m.id),
            patient_id: PatientId::from_uuid(m.patient_id),
            organization_id: OrganizationId::from_uuid(m.organization_id),
            encounter_id: m.encounter_id.map(RecordId::from_uuid),
            source: RecordSource {
                author: opt(
                    m.source_author,
                    DisplayName::parse,
                    "clinical_records.source_author",
                )?,
                performer: opt(
                    m.source_performer,
                    DisplayName::parse,
                    "clinical_records.source_performer",
                )?,
                organization: opt(
                    m.source_organization,
                    DisplayName::parse,
                    "clinical_records.source_organization",
                )?,
                from_outside: m.source_outside,
            },
            source_identifier: opt(
                m.source_identifier,
                SourceIdentifier::parse,
                "clinical_records.source_identifier",
            )?,
            sensitivity: SensitivityLabels::from_bits(bits)
                .map_err(corrupt("clinical_records.sensitivity"))?,
            release,
            filed_at: m.filed_at,
        },
        body,
    })
}
