//! FHIR R4 bundle -> [`ImportDraft`].

use crate::json::{
    array, codeable, coding_code, concept, datetime, first, first_codeable, period,
    required_codeable, str_at,
};
use base64::Engine as _;
use salus_domain::ids::IdGenerator;
use salus_domain::import::{ImportDraft, RecordDraft};
use salus_domain::patient::{AdministrativeSex, ContactDetails, Patient, PersonName};
use salus_domain::providers::{Practitioner, ProviderOrganization};
use salus_domain::record::{
    AbnormalFlag, Allergy, AllergyCategory, AllergyStatus, ClinicalNote, Criticality,
    DiagnosticReport, Encounter, EncounterClass, EncounterStatus, Immunization, ImmunizationStatus,
    Medication, MedicationStatus, NoteType, Observation, ObservationCategory, ObservationComponent,
    ObservationValue, Period, Problem as Condition, ProblemStatus, Procedure, ProcedureStatus,
    Quantity, Reaction, ReactionSeverity, RecordBody, RecordSource, ReferenceRange, ResultStatus,
    SensitivityLabel, SensitivityLabels,
};
use salus_domain::text::{Address, DisplayName, Email, Mrn, Phone, SourceIdentifier};
use salus_domain::{
    OrganizationId, PatientId, PractitionerId, ProviderOrgId, RecordId, StatementId,
};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// What is wrong with one entry. Names elements, never their values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("missing required element `{0}`")]
    Missing(&'static str),
    #[error("element `{0}` is not valid")]
    Invalid(&'static str),
    #[error("reference `{0}` points to no entry of the expected type in the bundle")]
    Dangling(&'static str),
    #[error("the same fullUrl or id appears in an earlier entry")]
    Duplicate,
    #[error("entry has no resource")]
    NoResource,
}

/// Why a bundle was refused. Nothing of a refused bundle is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Not JSON at all; the position helps find the fault without quoting content.
    #[error("not valid JSON (line {line}, column {column})")]
    Json { line: usize, column: usize },
    #[error("not a FHIR Bundle (resourceType is missing or not \"Bundle\")")]
    NotABundle,
    #[error("bundle type must be transaction, batch or collection")]
    UnsupportedBundleType,
    #[error("entry {index} ({resource_type}): {problem}")]
    Entry {
        index: usize,
        resource_type: String,
        problem: Problem,
    },
}

/// Settings of one mapping.
#[derive(Debug, Clone, Copy)]
pub struct MapOptions {
    /// The organisation whose charts receive the data.
    pub organization_id: OrganizationId,
    /// True when the data comes from another organisation (shown as "from outside").
    pub from_outside: bool,
}

/// A mapped bundle: the draft, how many resources it had, and what was skipped by type.
#[derive(Debug, Clone)]
pub struct MappedBundle {
    pub draft: ImportDraft,
    pub resources: usize,
    /// Resource types Salus does not model (Claim, CarePlan, ...), with how many of each.
    pub skipped: BTreeMap<String, usize>,
}

/// Our identifier for each entry, decided before any entry is mapped so that references can
/// point forwards as well as backwards.
#[derive(Debug, Clone, Copy)]
enum Target {
    Patient(PatientId),
    Record(RecordId, &'static str),
    Practitioner(PractitionerId),
    Provider(ProviderOrgId),
    Other,
}

/// What a practitioner or provider organisation is called, for record sources.
struct Index<'a> {
    by_key: HashMap<String, usize>,
    targets: Vec<Target>,
    resources: Vec<&'a Value>,
    names: HashMap<usize, DisplayName>,
}

impl<'a> Index<'a> {
    /// The entry a reference points to: `urn:uuid:...` full URLs, `Type/id`, absolute URLs
    /// ending in `Type/id`, and conditional `Type?identifier=system|value`.
    fn resolve(&self, reference: &str) -> Option<usize> {
        if let Some(i) = self.by_key.get(reference) {
            return Some(*i);
        }
        if let Some((rtype, query)) = reference.split_once('?') {
            let wanted = query.strip_prefix("identifier=")?;
            let (system, value) = wanted.split_once('|').unwrap_or(("", wanted));
            return self.resources.iter().position(|r| {
                str_at(r, "resourceType") == Some(rtype)
                    && array(r, "identifier").any(|id| {
                        str_at(id, "value") == Some(value)
                            && (system.is_empty() || str_at(id, "system") == Some(system))
                    })
            });
        }
        let mut parts = reference.rsplit('/');
        let (id, rtype) = (parts.next()?, parts.next()?);
        self.by_key.get(&format!("{rtype}/{id}")).copied()
    }

    fn reference<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
        v.get(key).and_then(|r| str_at(r, "reference"))
    }

    fn patient(&self, v: &Value, key: &'static str) -> Result<PatientId, Problem> {
        let r = Self::reference(v, key).ok_or(Problem::Missing(key))?;
        match self.resolve(r).map(|i| self.targets[i]) {
            Some(Target::Patient(id)) => Ok(id),
            _ => Err(Problem::Dangling(key)),
        }
    }

    fn record(
        &self,
        reference: &str,
        kind: &'static str,
        key: &'static str,
    ) -> Result<RecordId, Problem> {
        match self.resolve(reference).map(|i| self.targets[i]) {
            Some(Target::Record(id, k)) if k == kind => Ok(id),
            _ => Err(Problem::Dangling(key)),
        }
    }

    fn encounter(&self, v: &Value, key: &'static str) -> Result<Option<RecordId>, Problem> {
        Self::reference(v, key)
            .map(|r| self.record(r, "Encounter", key))
            .transpose()
    }

    /// The name of the practitioner or organisation a reference element points to; the
    /// reference's own `display` when the entry is not in the bundle.
    fn name_of(
        &self,
        reference_element: Option<&Value>,
        key: &'static str,
    ) -> Result<Option<DisplayName>, Problem> {
        let Some(el) = reference_element else {
            return Ok(None);
        };
        let display = || str_at(el, "display").and_then(|d| DisplayName::parse(d).ok());
        match str_at(el, "reference") {
            None => Ok(display()),
            Some(r) if r.starts_with('#') => Ok(display()),
            Some(r) => match self.resolve(r) {
                Some(i) => Ok(self.names.get(&i).cloned().or_else(display)),
                None => display().map(Some).ok_or(Problem::Dangling(key)),
            },
        }
    }
}

fn fail(index: usize, resource_type: &str, problem: Problem) -> BundleError {
    BundleError::Entry {
        index,
        resource_type: resource_type.to_owned(),
        problem,
    }
}

fn practitioner_name(r: &Value) -> Option<DisplayName> {
    let n = first(r, "name")?;
    let mut parts: Vec<&str> = array(n, "prefix").filter_map(Value::as_str).collect();
    parts.extend(array(n, "given").filter_map(Value::as_str));
    parts.extend(str_at(n, "family"));
    let joined = if parts.is_empty() {
        str_at(n, "text")?.to_owned()
    } else {
        parts.join(" ")
    };
    DisplayName::parse(&joined).ok()
}

/// Maps a FHIR R4 bundle into a draft for `options.organization_id`.
///
/// # Errors
/// [`BundleError`] naming the first entry (index from 0) that cannot be mapped and why.
pub fn map_bundle(
    json: &[u8],
    options: MapOptions,
    ids: &dyn IdGenerator,
) -> Result<MappedBundle, BundleError> {
    let bundle: Value = serde_json::from_slice(json).map_err(|e| BundleError::Json {
        line: e.line(),
        column: e.column(),
    })?;
    if str_at(&bundle, "resourceType") != Some("Bundle") {
        return Err(BundleError::NotABundle);
    }
    if !matches!(
        str_at(&bundle, "type"),
        Some("transaction" | "batch" | "collection")
    ) {
        return Err(BundleError::UnsupportedBundleType);
    }
    let entries: Vec<&Value> = array(&bundle, "entry").collect();

    // Pass 1: give every entry our id and index it by fullUrl and Type/id.
    let mut index = Index {
        by_key: HashMap::new(),
        targets: Vec::with_capacity(entries.len()),
        resources: Vec::with_capacity(entries.len()),
        names: HashMap::new(),
    };
    for (i, entry) in entries.iter().enumerate() {
        let resource = entry.get("resource").filter(|r| r.is_object());
        let Some(resource) = resource else {
            return Err(fail(i, "unknown", Problem::NoResource));
        };
        let rtype = str_at(resource, "resourceType")
            .ok_or_else(|| fail(i, "unknown", Problem::Missing("resourceType")))?;
        let target = match rtype {
            "Patient" => Target::Patient(PatientId::generate(ids)),
            "Practitioner" => Target::Practitioner(PractitionerId::generate(ids)),
            "Organization" => Target::Provider(ProviderOrgId::generate(ids)),
            "Encounter" | "Observation" | "DiagnosticReport" | "MedicationRequest"
            | "Immunization" | "Condition" | "AllergyIntolerance" | "Procedure"
            | "DocumentReference" => Target::Record(RecordId::generate(ids), static_type(rtype)),
            _ => Target::Other,
        };
        let mut keys = Vec::new();
        keys.extend(str_at(entry, "fullUrl").map(str::to_owned));
        keys.extend(str_at(resource, "id").map(|id| format!("{rtype}/{id}")));
        if keys.is_empty() && !matches!(target, Target::Other) {
            return Err(fail(i, rtype, Problem::Missing("fullUrl")));
        }
        for k in keys {
            if index.by_key.insert(k, i).is_some() {
                return Err(fail(i, rtype, Problem::Duplicate));
            }
        }
        match (rtype, target) {
            ("Practitioner", _) => {
                let name = practitioner_name(resource)
                    .ok_or_else(|| fail(i, rtype, Problem::Missing("name")))?;
                index.names.insert(i, name);
            }
            ("Organization", _) => {
                let name = str_at(resource, "name")
                    .and_then(|n| DisplayName::parse(n).ok())
                    .ok_or_else(|| fail(i, rtype, Problem::Missing("name")))?;
                index.names.insert(i, name);
            }
            _ => {}
        }
        index.targets.push(target);
        index.resources.push(resource);
    }

    // Visits lend their place and clinician to the records made during them.
    let mut visit_source: HashMap<RecordId, RecordSource> = HashMap::new();
    for (i, r) in index.resources.iter().enumerate() {
        if let Target::Record(id, "Encounter") = index.targets[i] {
            let src = RecordSource {
                author: None,
                performer: index
                    .name_of(
                        first(r, "participant").and_then(|p| p.get("individual")),
                        "participant.individual",
                    )
                    .map_err(|p| fail(i, "Encounter", p))?,
                organization: index
                    .name_of(r.get("serviceProvider"), "serviceProvider")
                    .map_err(|p| fail(i, "Encounter", p))?,
                from_outside: options.from_outside,
            };
            visit_source.insert(id, src);
        }
    }

    // Pass 2: map.
    let mut draft = ImportDraft::default();
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    let org = options.organization_id;
    // Claims with an explanation of benefit become statements (through the explanation).
    let explained: std::collections::HashSet<&str> = index
        .resources
        .iter()
        .filter(|r| str_at(r, "resourceType") == Some("ExplanationOfBenefit"))
        .filter_map(|r| crate::claims::claim_of(r))
        .collect();
    for (i, (resource, target)) in index.resources.iter().zip(&index.targets).enumerate() {
        let rtype = str_at(resource, "resourceType").unwrap_or("unknown");
        let source_identifier = || -> Result<SourceIdentifier, BundleError> {
            let key = str_at(resource, "id")
                .map(|id| format!("{rtype}/{id}"))
                .or_else(|| str_at(entries[i], "fullUrl").map(str::to_owned))
                .ok_or_else(|| fail(i, rtype, Problem::Missing("id")))?;
            SourceIdentifier::parse(&key).map_err(|_| fail(i, rtype, Problem::Invalid("id")))
        };
        match *target {
            Target::Other if rtype == "ExplanationOfBenefit" => {
                let patient = resource
                    .get("patient")
                    .and_then(|p| str_at(p, "reference"))
                    .and_then(|r| index.resolve(r))
                    .and_then(|p| match index.targets[p] {
                        Target::Patient(id) => Some(id),
                        _ => None,
                    });
                match patient.and_then(|p| {
                    crate::claims::statement_of(resource, StatementId::generate(ids), org, p)
                }) {
                    Some(st) => draft.statements.push(st),
                    None => *skipped.entry(rtype.to_owned()).or_default() += 1,
                }
            }
            Target::Other
                if rtype == "Claim"
                    && str_at(resource, "id").is_some_and(|id| explained.contains(id)) => {}
            Target::Other => *skipped.entry(rtype.to_owned()).or_default() += 1,
            Target::Patient(id) => {
                let p = map_patient(resource, id, org, source_identifier()?)
                    .map_err(|p| fail(i, rtype, p))?;
                draft.patients.push(p);
            }
            Target::Practitioner(id) => draft.practitioners.push(Practitioner {
                id,
                organization_id: org,
                name: index.names[&i].clone(),
                npi: array(resource, "identifier")
                    .find(|v| str_at(v, "system") == Some("http://hl7.org/fhir/sid/us-npi"))
                    .and_then(|v| str_at(v, "value"))
                    .map(str::to_owned),
                source_identifier: Some(source_identifier()?),
            }),
            Target::Provider(id) => draft.provider_organizations.push(ProviderOrganization {
                id,
                organization_id: org,
                name: index.names[&i].clone(),
                source_identifier: Some(source_identifier()?),
            }),
            Target::Record(id, _) => {
                let rec = map_record(
                    resource,
                    rtype,
                    id,
                    source_identifier()?,
                    &index,
                    &visit_source,
                    options,
                )
                .map_err(|p| fail(i, rtype, p))?;
                draft.records.push(rec);
            }
        }
    }
    Ok(MappedBundle {
        draft,
        resources: entries.len(),
        skipped,
    })
}

fn static_type(rtype: &str) -> &'static str {
    match rtype {
        "Encounter" => "Encounter",
        "Observation" => "Observation",
        "DiagnosticReport" => "DiagnosticReport",
        "MedicationRequest" => "MedicationRequest",
        "Immunization" => "Immunization",
        "Condition" => "Condition",
        "AllergyIntolerance" => "AllergyIntolerance",
        "Procedure" => "Procedure",
        _ => "DocumentReference",
    }
}

fn map_patient(
    r: &Value,
    id: PatientId,
    organization_id: OrganizationId,
    source_identifier: SourceIdentifier,
) -> Result<Patient, Problem> {
    let name_el = array(r, "name")
        .find(|n| str_at(n, "use") == Some("official"))
        .or_else(|| first(r, "name"))
        .ok_or(Problem::Missing("name"))?;
    let given: Vec<&str> = array(name_el, "given").filter_map(Value::as_str).collect();
    let name = PersonName::new(&given.join(" "), str_at(name_el, "family").unwrap_or(""))
        .map_err(|_| Problem::Invalid("name"))?;
    let birth = str_at(r, "birthDate").ok_or(Problem::Missing("birthDate"))?;
    let birth_date = chrono::NaiveDate::parse_from_str(birth, "%Y-%m-%d")
        .map_err(|_| Problem::Invalid("birthDate"))?;
    let sex = match str_at(r, "gender") {
        None => AdministrativeSex::Unknown,
        Some(g) => AdministrativeSex::from_code(g).ok_or(Problem::Invalid("gender"))?,
    };
    let is_mrn = |v: &&Value| coding_code(v, "type") == Some("MR");
    let mrn = array(r, "identifier")
        .find(is_mrn)
        .or_else(|| first(r, "identifier"))
        .and_then(|v| str_at(v, "value"))
        .or_else(|| str_at(r, "id"))
        .ok_or(Problem::Missing("identifier"))?;
    let telecom = |system: &str| {
        array(r, "telecom")
            .find(|t| str_at(t, "system") == Some(system))
            .and_then(|t| str_at(t, "value"))
    };
    let address = first(r, "address").map(|a| {
        let mut parts: Vec<&str> = array(a, "line").filter_map(Value::as_str).collect();
        parts.extend(
            ["city", "state", "postalCode"]
                .iter()
                .filter_map(|k| str_at(a, k)),
        );
        parts.join(", ")
    });
    Ok(Patient {
        id,
        organization_id,
        mrn: Mrn::parse(mrn).map_err(|_| Problem::Invalid("identifier"))?,
        name,
        birth_date,
        sex,
        contact: ContactDetails {
            phone: telecom("phone")
                .map(Phone::parse)
                .transpose()
                .map_err(|_| Problem::Invalid("telecom"))?,
            // A malformed email in the source is dropped, not fatal: it is contact data only.
            email: telecom("email").and_then(|e| Email::parse(e).ok()),
            address: address
                .filter(|a| !a.is_empty())
                .map(|a| Address::parse(&a))
                .transpose()
                .map_err(|_| Problem::Invalid("address"))?,
        },
        source_identifier: Some(source_identifier),
    })
}

/// Sensitivity labels from `meta.security` (HL7 v3 ActCode confidentiality categories).
fn labels(r: &Value) -> SensitivityLabels {
    let meta = r.get("meta");
    meta.map(|m| array(m, "security"))
        .into_iter()
        .flatten()
        .filter_map(|c| str_at(c, "code"))
        .fold(SensitivityLabels::empty(), |acc, code| {
            let label = match code {
                "PSY" | "PSYTHPN" | "MH" => Some(SensitivityLabel::MentalHealth),
                "ETH" | "SUD" | "ETHUD" | "OPIOIDUD" => Some(SensitivityLabel::SubstanceUse),
                "SEX" | "SDV" | "STD" => Some(SensitivityLabel::SexualReproductive),
                "HIV" => Some(SensitivityLabel::Hiv),
                "GDIS" => Some(SensitivityLabel::Genetic),
                _ => None,
            };
            label.map_or(acc, |l| acc.with(l))
        })
}

fn result_status(r: &Value) -> Result<ResultStatus, Problem> {
    let s = str_at(r, "status").ok_or(Problem::Missing("status"))?;
    ResultStatus::from_code(&s.replace('-', "_")).ok_or(Problem::Invalid("status"))
}

fn status<T>(r: &Value, from: impl Fn(&str) -> Option<T>) -> Result<T, Problem> {
    let s = str_at(r, "status").ok_or(Problem::Missing("status"))?;
    from(&s.replace('-', "_")).ok_or(Problem::Invalid("status"))
}

fn value_of(v: &Value) -> Result<Option<ObservationValue>, Problem> {
    if let Some(q) = v.get("valueQuantity") {
        let value = q
            .get("value")
            .and_then(Value::as_f64)
            .ok_or(Problem::Invalid("valueQuantity"))?;
        let unit = str_at(q, "unit")
            .or_else(|| str_at(q, "code"))
            .map(str::to_owned);
        return Ok(Some(ObservationValue::Quantity(Quantity { value, unit })));
    }
    if let Some(s) = str_at(v, "valueString") {
        return Ok(Some(ObservationValue::Text(s.to_owned())));
    }
    if let Some(c) = codeable(v, "valueCodeableConcept")? {
        return Ok(Some(ObservationValue::Coded(c)));
    }
    if let Some(b) = v.get("valueBoolean").and_then(Value::as_bool) {
        return Ok(Some(ObservationValue::Text(
            if b { "Yes" } else { "No" }.to_owned(),
        )));
    }
    if let Some(n) = v.get("valueInteger").and_then(Value::as_i64) {
        #[allow(clippy::cast_precision_loss, reason = "FHIR integers are 32-bit")]
        return Ok(Some(ObservationValue::Quantity(Quantity {
            value: n as f64,
            unit: None,
        })));
    }
    Ok(None)
}

fn range_of(v: &Value) -> Option<ReferenceRange> {
    let r = first(v, "referenceRange")?;
    let bound = |k: &str| {
        r.get(k)
            .and_then(|q| q.get("value"))
            .and_then(Value::as_f64)
    };
    Some(ReferenceRange {
        low: bound("low"),
        high: bound("high"),
        text: str_at(r, "text").map(str::to_owned),
    })
}

fn flag_of(
    v: &Value,
    value: Option<&ObservationValue>,
    range: Option<&ReferenceRange>,
) -> Option<AbnormalFlag> {
    let interpreted = v
        .get("interpretation")
        .and_then(Value::as_array)
        .and_then(|a| a.first());
    if let Some(code) = interpreted
        .and_then(|i| first(i, "coding"))
        .and_then(|c| str_at(c, "code"))
    {
        return match code {
            "N" => Some(AbnormalFlag::Normal),
            "L" => Some(AbnormalFlag::Low),
            "H" => Some(AbnormalFlag::High),
            "LL" | "LU" => Some(AbnormalFlag::CriticalLow),
            "HH" | "HU" => Some(AbnormalFlag::CriticalHigh),
            "A" | "AA" => Some(AbnormalFlag::Abnormal),
            _ => None,
        };
    }
    match (value, range) {
        (Some(ObservationValue::Quantity(q)), Some(r)) => r.flag_for(q.value),
        _ => None,
    }
}

fn map_record(
    r: &Value,
    rtype: &str,
    id: RecordId,
    source_identifier: SourceIdentifier,
    index: &Index<'_>,
    visits: &HashMap<RecordId, RecordSource>,
    options: MapOptions,
) -> Result<RecordDraft, Problem> {
    let subject_key = match rtype {
        "Immunization" | "AllergyIntolerance" => "patient",
        _ => "subject",
    };
    let patient_id = index.patient(r, subject_key)?;
    let encounter_id = match rtype {
        "Encounter" => None,
        "DocumentReference" => r
            .get("context")
            .and_then(|c| first(c, "encounter"))
            .and_then(|e| str_at(e, "reference"))
            .map(|e| index.record(e, "Encounter", "context.encounter"))
            .transpose()?,
        _ => index.encounter(r, "encounter")?,
    };
    let mut source = encounter_id
        .and_then(|e| visits.get(&e).cloned())
        .unwrap_or(RecordSource {
            from_outside: options.from_outside,
            ..RecordSource::default()
        });
    let body = match rtype {
        "Encounter" => {
            let class = match r.get("class").and_then(|c| str_at(c, "code")) {
                Some("AMB") => EncounterClass::Ambulatory,
                Some("EMER") => EncounterClass::Emergency,
                Some("IMP" | "ACUTE" | "NONAC" | "OBSENC") => EncounterClass::Inpatient,
                Some("VR") => EncounterClass::Virtual,
                Some("HH") => EncounterClass::HomeHealth,
                Some(_) => EncounterClass::Other,
                None => return Err(Problem::Missing("class")),
            };
            source = visits.get(&id).cloned().unwrap_or(source);
            RecordBody::Encounter(Encounter {
                class,
                status: status(r, EncounterStatus::from_code)?,
                visit_type: first_codeable(r, "type")?,
                reason: first_codeable(r, "reasonCode")?,
                period: period(r, "period")?,
            })
        }
        "Observation" => {
            let category = match first(r, "category")
                .and_then(|c| first(c, "coding"))
                .and_then(|c| str_at(c, "code"))
            {
                Some("laboratory") => ObservationCategory::Laboratory,
                Some("vital-signs") => ObservationCategory::VitalSigns,
                _ => ObservationCategory::Other,
            };
            let value = value_of(r)?;
            let range = range_of(r);
            let flag = flag_of(r, value.as_ref(), range.as_ref());
            let components = array(r, "component")
                .map(|c| {
                    let value = value_of(c)?;
                    let range = range_of(c);
                    Ok(ObservationComponent {
                        code: required_codeable(c, "code")
                            .map_err(|_| Problem::Missing("component.code"))?,
                        flag: flag_of(c, value.as_ref(), range.as_ref()),
                        value,
                        reference_range: range,
                    })
                })
                .collect::<Result<Vec<_>, Problem>>()?;
            let effective_at = match datetime(r, "effectiveDateTime")? {
                Some(t) => Some(t),
                None => period(r, "effectivePeriod")?.start,
            };
            if let Some(p) = index.name_of(first(r, "performer"), "performer")? {
                source.performer = Some(p);
            }
            RecordBody::Observation(Observation {
                category,
                code: required_codeable(r, "code")?,
                status: result_status(r)?,
                value,
                components,
                reference_range: range,
                flag,
                effective_at,
                issued: datetime(r, "issued")?,
            })
        }
        "DiagnosticReport" => {
            let results = array(r, "result")
                .map(|res| {
                    let reference =
                        str_at(res, "reference").ok_or(Problem::Missing("result.reference"))?;
                    index.record(reference, "Observation", "result")
                })
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(p) = index.name_of(first(r, "performer"), "performer")? {
                source.performer = Some(p);
            }
            RecordBody::DiagnosticReport(DiagnosticReport {
                category: first_codeable(r, "category")?,
                code: required_codeable(r, "code")?,
                status: result_status(r)?,
                results,
                conclusion: str_at(r, "conclusion").map(str::to_owned),
                effective_at: datetime(r, "effectiveDateTime")?,
                issued: datetime(r, "issued")?,
            })
        }
        "MedicationRequest" => {
            let medication = match codeable(r, "medicationCodeableConcept")? {
                Some(c) => c,
                None => {
                    let display = r
                        .get("medicationReference")
                        .and_then(|m| str_at(m, "display"))
                        .ok_or(Problem::Missing("medication[x]"))?;
                    salus_domain::text::Code::new(None, None, display)
                        .map_err(|_| Problem::Invalid("medicationReference"))?
                }
            };
            let s = str_at(r, "status").ok_or(Problem::Missing("status"))?;
            let status = match s {
                "cancelled" => MedicationStatus::Stopped,
                other => MedicationStatus::from_code(&other.replace('-', "_"))
                    .ok_or(Problem::Invalid("status"))?,
            };
            source.author = index.name_of(r.get("requester"), "requester")?;
            let validity = r
                .get("dispenseRequest")
                .map(|d| period(d, "validityPeriod"))
                .transpose()?;
            RecordBody::Medication(Medication {
                medication,
                dosage: first(r, "dosageInstruction")
                    .and_then(|d| str_at(d, "text"))
                    .map(str::to_owned),
                status,
                authored_on: datetime(r, "authoredOn")?,
                period: validity.unwrap_or_default(),
            })
        }
        "Immunization" => {
            if let Some(p) = first(r, "performer").map(|p| p.get("actor")) {
                source.performer = index.name_of(p, "performer.actor")?.or(source.performer);
            }
            RecordBody::Immunization(Immunization {
                vaccine: required_codeable(r, "vaccineCode")?,
                status: status(r, ImmunizationStatus::from_code)?,
                occurred_at: datetime(r, "occurrenceDateTime")?,
                lot_number: str_at(r, "lotNumber").map(str::to_owned),
                primary_source: r
                    .get("primarySource")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
            })
        }
        "Condition" => {
            let clinical_status = match coding_code(r, "clinicalStatus") {
                Some(c) => ProblemStatus::from_code(c).ok_or(Problem::Invalid("clinicalStatus"))?,
                None => return Err(Problem::Missing("clinicalStatus")),
            };
            source.author = index.name_of(r.get("recorder").or(r.get("asserter")), "recorder")?;
            let onset = match datetime(r, "onsetDateTime")? {
                Some(t) => Some(t),
                None => period(r, "onsetPeriod")?.start,
            };
            RecordBody::Problem(Condition {
                code: required_codeable(r, "code")?,
                clinical_status,
                onset,
                abatement: datetime(r, "abatementDateTime")?,
                recorded: datetime(r, "recordedDate")?,
            })
        }
        "AllergyIntolerance" => {
            let categories = array(r, "category")
                .filter_map(Value::as_str)
                .map(|c| AllergyCategory::from_code(c).ok_or(Problem::Invalid("category")))
                .collect::<Result<Vec<_>, _>>()?;
            let reactions = array(r, "reaction")
                .map(|re| {
                    let manifestation = first(re, "manifestation")
                        .ok_or(Problem::Missing("reaction.manifestation"))
                        .and_then(|m| concept(m, "reaction.manifestation"))?;
                    let severity = str_at(re, "severity")
                        .map(|s| {
                            ReactionSeverity::from_code(s)
                                .ok_or(Problem::Invalid("reaction.severity"))
                        })
                        .transpose()?;
                    Ok(Reaction {
                        manifestation,
                        severity,
                    })
                })
                .collect::<Result<Vec<_>, Problem>>()?;
            source.author = index.name_of(r.get("recorder").or(r.get("asserter")), "recorder")?;
            RecordBody::Allergy(Allergy {
                substance: required_codeable(r, "code")?,
                categories,
                clinical_status: coding_code(r, "clinicalStatus")
                    .map(|c| AllergyStatus::from_code(c).ok_or(Problem::Invalid("clinicalStatus")))
                    .transpose()?,
                criticality: str_at(r, "criticality")
                    .map(|c| {
                        Criticality::from_code(&c.replace('-', "_"))
                            .ok_or(Problem::Invalid("criticality"))
                    })
                    .transpose()?,
                reactions,
                recorded: datetime(r, "recordedDate")?,
            })
        }
        "Procedure" => {
            let performed = match datetime(r, "performedDateTime")? {
                Some(t) => Period {
                    start: Some(t),
                    end: Some(t),
                },
                None => period(r, "performedPeriod")?,
            };
            if let Some(p) = first(r, "performer").map(|p| p.get("actor")) {
                source.performer = index.name_of(p, "performer.actor")?.or(source.performer);
            }
            RecordBody::Procedure(Procedure {
                code: required_codeable(r, "code")?,
                status: status(r, ProcedureStatus::from_code)?,
                performed,
            })
        }
        _ => {
            // DocumentReference: a clinical note with its text inline as base64.
            let loinc = coding_code(r, "type");
            let note_type = match loinc {
                Some("18842-5") => NoteType::DischargeSummary,
                Some("11506-3") => NoteType::ProgressNote,
                Some("11488-4") => NoteType::Consultation,
                Some("34117-2") => NoteType::HistoryAndPhysical,
                Some("34109-9" | "51847-2" | "68608-9") => NoteType::VisitNote,
                _ => NoteType::Other,
            };
            let attachment = first(r, "content")
                .and_then(|c| c.get("attachment"))
                .ok_or(Problem::Missing("content.attachment"))?;
            let data =
                str_at(attachment, "data").ok_or(Problem::Missing("content.attachment.data"))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|_| Problem::Invalid("content.attachment.data"))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| Problem::Invalid("content.attachment.data"))?;
            let title = str_at(r, "description")
                .map(str::to_owned)
                .or_else(|| {
                    codeable(r, "type")
                        .ok()
                        .flatten()
                        .map(|c| c.display().to_owned())
                })
                .unwrap_or_else(|| "Clinical note".to_owned());
            source.author = index
                .name_of(first(r, "author"), "author")?
                .or(source.author);
            RecordBody::ClinicalNote(ClinicalNote {
                note_type,
                title,
                text,
                date: datetime(r, "date")?,
            })
        }
    };
    Ok(RecordDraft {
        id,
        patient_id,
        encounter_id,
        source,
        source_identifier,
        sensitivity: labels(r),
        body,
    })
}
