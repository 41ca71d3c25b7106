//! Our own generator of synthetic patients with realistic record volumes (a few hundred
//! records each): visits with vital signs and notes, lab panels with reports, problems,
//! medications, immunizations, allergies and procedures. Deterministic for a given seed.
//!
//! Every name and value here is invented; no real person is described.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use salus_domain::ids::IdGenerator;
use salus_domain::import::{ImportDraft, RecordDraft};
use salus_domain::patient::{AdministrativeSex, ContactDetails, Patient, PersonName};
use salus_domain::record::{
    Allergy, AllergyCategory, AllergyStatus, ClinicalNote, Criticality, DiagnosticReport,
    Encounter, EncounterClass, EncounterStatus, Immunization, ImmunizationStatus, Medication,
    MedicationStatus, NoteType, Observation, ObservationCategory, ObservationComponent,
    ObservationValue, Period, Problem, ProblemStatus, Procedure, ProcedureStatus, Quantity,
    Reaction, ReactionSeverity, RecordBody, RecordSource, ReferenceRange, ResultStatus,
    SensitivityLabels,
};
use salus_domain::text::{Code, DisplayName, Email, Mrn, Phone, SourceIdentifier};
use salus_domain::{OrganizationId, PatientId, RecordId};

const GIVEN: &[&str] = &[
    "Ada", "Bruno", "Carmen", "Dmitri", "Elif", "Farah", "Goran", "Hana", "Ines", "Jonas", "Kemal",
    "Lena", "Marta", "Nils", "Olu", "Priya", "Quinn", "Rosa", "Sami", "Tova", "Umar", "Vera",
];
const FAMILY: &[&str] = &[
    "Abara",
    "Bergstrom",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Fontaine",
    "Greco",
    "Haddad",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Novak",
    "Okafor",
    "Petrov",
    "Quist",
    "Rahman",
];
const CLINICIANS: &[&str] = &[
    "Dr. Mira Osei",
    "Dr. Tomas Reyes",
    "Dr. Aino Virtanen",
    "Dr. Sean Walsh",
];
const LOINC: &str = "http://loinc.org";
const SNOMED: &str = "http://snomed.info/sct";
const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
const CVX: &str = "http://hl7.org/fhir/sid/cvx";

/// (LOINC code, name, unit, low, high, typical mean, spread)
type Analyte = (&'static str, &'static str, &'static str, f64, f64, f64, f64);

const METABOLIC: &[Analyte] = &[
    ("2345-7", "Glucose", "mg/dL", 70.0, 99.0, 92.0, 14.0),
    ("3094-0", "Urea nitrogen", "mg/dL", 7.0, 20.0, 14.0, 4.0),
    ("2160-0", "Creatinine", "mg/dL", 0.6, 1.3, 0.95, 0.2),
    ("17861-6", "Calcium", "mg/dL", 8.5, 10.2, 9.4, 0.4),
    ("2951-2", "Sodium", "mmol/L", 135.0, 145.0, 140.0, 2.5),
    ("2823-3", "Potassium", "mmol/L", 3.5, 5.1, 4.3, 0.4),
    ("2075-0", "Chloride", "mmol/L", 98.0, 107.0, 102.0, 2.5),
    ("2028-9", "Carbon dioxide", "mmol/L", 22.0, 29.0, 25.5, 2.0),
];
const LIPIDS: &[Analyte] = &[
    (
        "2093-3",
        "Cholesterol, total",
        "mg/dL",
        0.0,
        200.0,
        185.0,
        30.0,
    ),
    ("2571-8", "Triglycerides", "mg/dL", 0.0, 150.0, 130.0, 40.0),
    (
        "18262-6",
        "LDL cholesterol",
        "mg/dL",
        0.0,
        100.0,
        105.0,
        25.0,
    ),
    (
        "2085-9",
        "HDL cholesterol",
        "mg/dL",
        40.0,
        100.0,
        52.0,
        10.0,
    ),
];
const PROBLEMS: &[(&str, &str, bool)] = &[
    ("59621000", "Essential hypertension", true),
    ("714628002", "Prediabetes", true),
    ("55822004", "Hyperlipidemia", true),
    ("195967001", "Asthma", true),
    ("10509002", "Acute bronchitis", false),
    ("444814009", "Viral sinusitis", false),
    ("43878008", "Streptococcal sore throat", false),
    ("162864005", "Body mass index 30+ - obesity", true),
];
const MEDICATIONS: &[(&str, &str, &str)] = &[
    (
        "314076",
        "lisinopril 10 MG Oral Tablet",
        "Take one tablet by mouth once a day.",
    ),
    (
        "259255",
        "atorvastatin 80 MG Oral Tablet",
        "Take one tablet by mouth at bedtime.",
    ),
    (
        "860975",
        "metformin 500 MG Oral Tablet",
        "Take one tablet twice a day with meals.",
    ),
    (
        "745679",
        "albuterol 0.09 MG/ACTUAT Inhaler",
        "Two puffs every 4 hours as needed.",
    ),
    (
        "308182",
        "amoxicillin 250 MG Oral Capsule",
        "One capsule three times a day for 10 days.",
    ),
    (
        "313782",
        "acetaminophen 325 MG Oral Tablet",
        "Two tablets every 6 hours as needed.",
    ),
];
const VACCINES: &[(&str, &str)] = &[
    ("140", "Influenza, seasonal, injectable, preservative free"),
    ("113", "Td (adult) preservative free"),
    ("133", "Pneumococcal conjugate PCV 13"),
    ("208", "SARS-COV-2 (COVID-19) vaccine, mRNA"),
];
const ALLERGENS: &[(&str, &str, AllergyCategory)] = &[
    ("7980", "Penicillin G", AllergyCategory::Medication),
    ("300916003", "Latex allergy", AllergyCategory::Environment),
    ("91935009", "Allergy to peanuts", AllergyCategory::Food),
    ("256277009", "Grass pollen", AllergyCategory::Environment),
];
const PROCEDURES: &[(&str, &str)] = &[
    ("430193006", "Medication reconciliation"),
    ("710824005", "Assessment of health and social care needs"),
    ("171207006", "Depression screening"),
    ("76601001", "Intramuscular injection"),
    ("73761001", "Colonoscopy"),
];

fn code(system: &str, c: &str, display: &str) -> Code {
    Code::new(Some(system), Some(c), display).expect("the code tables above hold valid codes")
}

fn name(s: &str) -> Option<DisplayName> {
    DisplayName::parse(s).ok()
}

struct Builder<'a> {
    rng: StdRng,
    ids: &'a dyn IdGenerator,
    patient: PatientId,
    prefix: String,
    seq: u32,
    records: Vec<RecordDraft>,
    site: Option<DisplayName>,
}

impl Builder<'_> {
    fn push(
        &mut self,
        encounter: Option<RecordId>,
        author: Option<&str>,
        body: RecordBody,
    ) -> RecordId {
        let id = RecordId::generate(self.ids);
        self.seq += 1;
        let source_identifier = SourceIdentifier::parse(&format!("{}/r{}", self.prefix, self.seq))
            .expect("synthetic identifiers are short ASCII");
        self.records.push(RecordDraft {
            id,
            patient_id: self.patient,
            encounter_id: encounter,
            source: RecordSource {
                author: author.and_then(name),
                performer: author.and_then(name),
                organization: self.site.clone(),
                from_outside: false,
            },
            source_identifier,
            sensitivity: SensitivityLabels::empty(),
            body,
        });
        id
    }

    fn around(&mut self, mean: f64, spread: f64) -> f64 {
        // Sum of uniforms: a cheap bell curve, rounded to one decimal.
        let u: f64 = (0..4)
            .map(|_| self.rng.random_range(-1.0..1.0))
            .sum::<f64>()
            / 2.0;
        ((mean + u * spread) * 10.0).round() / 10.0
    }

    fn measured(
        &mut self,
        a: &Analyte,
        at: DateTime<Utc>,
        category: ObservationCategory,
    ) -> Observation {
        let (c, display, unit, low, high, mean, spread) = *a;
        let value = self.around(mean, spread).max(0.0);
        let range = ReferenceRange {
            low: (low > 0.0).then_some(low),
            high: Some(high),
            text: None,
        };
        Observation {
            category,
            code: code(LOINC, c, display),
            status: ResultStatus::Final,
            flag: range.flag_for(value),
            value: Some(ObservationValue::Quantity(Quantity {
                value,
                unit: Some(unit.into()),
            })),
            components: Vec::new(),
            reference_range: Some(range),
            effective_at: Some(at),
            issued: Some(at + Duration::hours(4)),
        }
    }
}

/// One synthetic chart and its records, for organisation `org`, as of `today`.
/// `n` identifies the patient (MRN `SYN` + n); the same `(n, seed)` gives the same chart.
pub fn patient_draft(
    org: OrganizationId,
    n: u32,
    seed: u64,
    today: DateTime<Utc>,
    ids: &dyn IdGenerator,
) -> ImportDraft {
    let mut rng = StdRng::seed_from_u64(seed ^ (u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
    let given = *GIVEN.choose(&mut rng).unwrap_or(&"Alex");
    let family = *FAMILY.choose(&mut rng).unwrap_or(&"Doe");
    let age_days = rng.random_range(365 * 18..365 * 85);
    let birth_date: NaiveDate = (today - Duration::days(age_days)).date_naive();
    let sex = if rng.random_bool(0.5) {
        AdministrativeSex::Female
    } else {
        AdministrativeSex::Male
    };
    let patient_id = PatientId::generate(ids);
    let prefix = format!("synthetic/{n}");
    let patient = Patient {
        id: patient_id,
        organization_id: org,
        mrn: Mrn::parse(&format!("SYN{n:07}")).expect("the MRN pattern is valid"),
        name: PersonName::new(given, family).expect("names come from the tables"),
        birth_date,
        sex,
        contact: ContactDetails {
            phone: Phone::parse(&format!("555-01{:02}-{:04}", n % 100, n % 10_000)).ok(),
            email: Email::parse(&format!("patient{n}@example.org")).ok(),
            address: None,
        },
        source_identifier: SourceIdentifier::parse(&format!("{prefix}/patient")).ok(),
    };
    let mut b = Builder {
        rng,
        ids,
        patient: patient_id,
        prefix,
        seq: 0,
        records: Vec::with_capacity(320),
        site: name("Salus Demo Clinic"),
    };

    // Problems first, so that visits can be about them.
    let problem_count = b.rng.random_range(2..=6);
    for (c, display, chronic) in PROBLEMS
        .choose_multiple(&mut b.rng, problem_count)
        .copied()
        .collect::<Vec<_>>()
    {
        let onset = today - Duration::days(b.rng.random_range(30..3650));
        let clinician = *CLINICIANS.choose(&mut b.rng).unwrap_or(&CLINICIANS[0]);
        b.push(
            None,
            Some(clinician),
            RecordBody::Problem(Problem {
                code: code(SNOMED, c, display),
                clinical_status: if chronic {
                    ProblemStatus::Active
                } else {
                    ProblemStatus::Resolved
                },
                onset: Some(onset),
                abatement: (!chronic).then(|| onset + Duration::days(14)),
                recorded: Some(onset),
            }),
        );
    }

    let visits = b.rng.random_range(15..=35);
    for v in 0..visits {
        let days_ago = (i64::from(visits - v)) * b.rng.random_range(60..140);
        let start =
            today - Duration::days(days_ago) + Duration::minutes(b.rng.random_range(480..1020));
        let clinician = *CLINICIANS.choose(&mut b.rng).unwrap_or(&CLINICIANS[0]);
        let roll: f64 = b.rng.random();
        let (class, visit_code, visit_name, minutes) = if roll < 0.04 {
            (
                EncounterClass::Inpatient,
                "32485007",
                "Hospital admission",
                60 * 24 * 3,
            )
        } else if roll < 0.12 {
            (
                EncounterClass::Emergency,
                "50849002",
                "Emergency room admission",
                180,
            )
        } else {
            (
                EncounterClass::Ambulatory,
                "162673000",
                "General examination of patient",
                30,
            )
        };
        let enc = b.push(
            None,
            Some(clinician),
            RecordBody::Encounter(Encounter {
                class,
                status: EncounterStatus::Finished,
                visit_type: Some(code(SNOMED, visit_code, visit_name)),
                reason: None,
                period: Period {
                    start: Some(start),
                    end: Some(start + Duration::minutes(minutes)),
                },
            }),
        );

        // Vital signs at every visit.
        let height = b.around(
            if sex == AdministrativeSex::Female {
                164.0
            } else {
                177.0
            },
            6.0,
        );
        let weight = b.around(78.0, 14.0);
        for (c, d, unit, value) in [
            ("8302-2", "Body Height", "cm", height),
            ("29463-7", "Body Weight", "kg", weight),
            (
                "39156-5",
                "Body mass index (BMI)",
                "kg/m2",
                (weight / (height / 100.0).powi(2) * 10.0).round() / 10.0,
            ),
        ] {
            b.push(
                Some(enc),
                Some(clinician),
                RecordBody::Observation(Observation {
                    category: ObservationCategory::VitalSigns,
                    code: code(LOINC, c, d),
                    status: ResultStatus::Final,
                    value: Some(ObservationValue::Quantity(Quantity {
                        value,
                        unit: Some(unit.into()),
                    })),
                    components: Vec::new(),
                    reference_range: None,
                    flag: None,
                    effective_at: Some(start),
                    issued: Some(start),
                }),
            );
        }
        let hr = b.measured(
            &("8867-4", "Heart rate", "/min", 60.0, 100.0, 74.0, 12.0),
            start,
            ObservationCategory::VitalSigns,
        );
        b.push(Some(enc), Some(clinician), RecordBody::Observation(hr));
        let sys = b.measured(
            &(
                "8480-6",
                "Systolic blood pressure",
                "mm[Hg]",
                90.0,
                120.0,
                121.0,
                12.0,
            ),
            start,
            ObservationCategory::VitalSigns,
        );
        let dia = b.measured(
            &(
                "8462-4",
                "Diastolic blood pressure",
                "mm[Hg]",
                60.0,
                80.0,
                78.0,
                8.0,
            ),
            start,
            ObservationCategory::VitalSigns,
        );
        let component = |o: Observation| ObservationComponent {
            code: o.code,
            value: o.value,
            reference_range: o.reference_range,
            flag: o.flag,
        };
        let bp_flag = [sys.flag, dia.flag]
            .into_iter()
            .flatten()
            .find(|f| f.is_abnormal());
        b.push(
            Some(enc),
            Some(clinician),
            RecordBody::Observation(Observation {
                category: ObservationCategory::VitalSigns,
                code: code(LOINC, "85354-9", "Blood pressure panel"),
                status: ResultStatus::Final,
                value: None,
                components: vec![component(sys), component(dia)],
                reference_range: None,
                flag: bp_flag,
                effective_at: Some(start),
                issued: Some(start),
            }),
        );

        // A lab panel at every third visit, grouped in a report.
        if v % 3 == 0 {
            let (panel, report_code, report_name) = if v % 2 == 0 {
                (METABOLIC, "51990-0", "Basic metabolic panel - Blood")
            } else {
                (
                    LIPIDS,
                    "57698-3",
                    "Lipid panel with direct LDL - Serum or Plasma",
                )
            };
            let results: Vec<RecordId> = panel
                .iter()
                .map(|a| {
                    let o = b.measured(a, start, ObservationCategory::Laboratory);
                    b.push(Some(enc), Some(clinician), RecordBody::Observation(o))
                })
                .collect();
            b.push(
                Some(enc),
                Some(clinician),
                RecordBody::DiagnosticReport(DiagnosticReport {
                    category: Some(code(
                        "http://terminology.hl7.org/CodeSystem/v2-0074",
                        "LAB",
                        "Laboratory",
                    )),
                    code: code(LOINC, report_code, report_name),
                    status: ResultStatus::Final,
                    results,
                    conclusion: None,
                    effective_at: Some(start),
                    issued: Some(start + Duration::hours(4)),
                }),
            );
        }

        if v % 4 == 0 || class != EncounterClass::Ambulatory {
            let (c, d) = PROCEDURES[(v as usize + 1) % PROCEDURES.len()];
            b.push(
                Some(enc),
                Some(clinician),
                RecordBody::Procedure(Procedure {
                    code: code(SNOMED, c, d),
                    status: ProcedureStatus::Completed,
                    performed: Period {
                        start: Some(start),
                        end: Some(start + Duration::minutes(15)),
                    },
                }),
            );
        }
        if b.rng.random_bool(0.35) {
            let (c, d) = VACCINES[v as usize % VACCINES.len()];
            let lot = format!("LOT{:05}", b.rng.random_range(0..100_000));
            b.push(
                Some(enc),
                Some(clinician),
                RecordBody::Immunization(Immunization {
                    vaccine: code(CVX, c, d),
                    status: ImmunizationStatus::Completed,
                    occurred_at: Some(start),
                    lot_number: Some(lot),
                    primary_source: true,
                }),
            );
        }
        if b.rng.random_bool(0.25) {
            let (c, d, dosage) = *MEDICATIONS.choose(&mut b.rng).unwrap_or(&MEDICATIONS[0]);
            let recent = days_ago < 365;
            b.push(
                Some(enc),
                Some(clinician),
                RecordBody::Medication(Medication {
                    medication: code(RXNORM, c, d),
                    dosage: Some(dosage.into()),
                    status: if recent {
                        MedicationStatus::Active
                    } else {
                        MedicationStatus::Stopped
                    },
                    authored_on: Some(start),
                    period: Period {
                        start: Some(start),
                        end: (!recent).then(|| start + Duration::days(90)),
                    },
                }),
            );
        }
        let (note_type, title, text) = if class == EncounterClass::Inpatient {
            (
                NoteType::DischargeSummary,
                "Discharge summary",
                format!(
                    "Admitted for observation. Vital signs stable during the stay. Discharged home in good condition. \
                 Follow up with {clinician} in two weeks."
                ),
            )
        } else {
            (
                NoteType::VisitNote,
                "Visit note",
                format!(
                    "Seen by {clinician}. Weight {weight} kg, height {height} cm. Discussed diet, exercise and sleep. \
                 Continue current plan; return for the next routine visit."
                ),
            )
        };
        b.push(
            Some(enc),
            Some(clinician),
            RecordBody::ClinicalNote(ClinicalNote {
                note_type,
                title: title.into(),
                text,
                date: Some(start + Duration::minutes(minutes)),
            }),
        );
    }

    let allergy_count = b.rng.random_range(0..=2);
    for (c, d, category) in ALLERGENS
        .choose_multiple(&mut b.rng, allergy_count)
        .copied()
        .collect::<Vec<_>>()
    {
        let recorded = today - Duration::days(b.rng.random_range(100..4000));
        let high = b.rng.random_bool(0.2);
        let moderate = b.rng.random_bool(0.3);
        b.push(
            None,
            None,
            RecordBody::Allergy(Allergy {
                substance: code(SNOMED, c, d),
                categories: vec![category],
                clinical_status: Some(AllergyStatus::Active),
                criticality: Some(if high {
                    Criticality::High
                } else {
                    Criticality::Low
                }),
                reactions: vec![Reaction {
                    manifestation: code(SNOMED, "247472004", "Hives"),
                    severity: Some(if moderate {
                        ReactionSeverity::Moderate
                    } else {
                        ReactionSeverity::Mild
                    }),
                }],
                recorded: Some(recorded),
            }),
        );
    }

    ImportDraft {
        patients: vec![patient],
        practitioners: Vec::new(),
        provider_organizations: Vec::new(),
        records: b.records,
        statements: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use salus_domain::record::RecordKind;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Debug, Default)]
    struct Seq(AtomicU64);
    impl IdGenerator for Seq {
        fn next_uuid(&self) -> uuid::Uuid {
            uuid::Uuid::from_u128(u128::from(self.0.fetch_add(1, Ordering::Relaxed) + 1))
        }
    }

    fn today() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn volumes_are_realistic_and_every_kind_but_notes_from_outside_appears() {
        let org = OrganizationId::from_uuid(uuid::Uuid::from_u128(9));
        let mut totals = Vec::new();
        for n in 0..20 {
            let d = patient_draft(org, n, 7, today(), &Seq::default());
            let counts = d.counts();
            totals.push(d.records.len());
            for kind in [
                RecordKind::Encounter,
                RecordKind::Observation,
                RecordKind::DiagnosticReport,
                RecordKind::Problem,
                RecordKind::ClinicalNote,
                RecordKind::Procedure,
            ] {
                assert!(
                    counts.records.get(&kind).copied().unwrap_or(0) > 0,
                    "{kind:?} missing for {n}"
                );
            }
            assert!(d.records.iter().all(|r| r.patient_id == d.patients[0].id));
        }
        let min = totals.iter().min().copied().unwrap_or(0);
        let max = totals.iter().max().copied().unwrap_or(0);
        assert!(
            min >= 100 && max <= 600,
            "records per patient between {min} and {max}"
        );
    }

    #[test]
    fn same_seed_same_chart() {
        let org = OrganizationId::from_uuid(uuid::Uuid::from_u128(9));
        let a = patient_draft(org, 3, 42, today(), &Seq::default());
        let b = patient_draft(org, 3, 42, today(), &Seq::default());
        assert_eq!(a.records, b.records);
        let c = patient_draft(org, 4, 42, today(), &Seq::default());
        assert_ne!(a.records.len(), 0);
        assert_ne!(a.patients[0].mrn, c.patients[0].mrn);
    }
}
