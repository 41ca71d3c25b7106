//! Mapping tests: every fixture bundle, and hand-made bundles for each way a bundle can be bad.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use salus_domain::OrganizationId;
use salus_domain::ids::IdGenerator;
use salus_domain::record::{
    AbnormalFlag, NoteType, ObservationCategory, ObservationValue, RecordBody, RecordKind,
    SensitivityLabel,
};
use salus_fhir::{BundleError, MapOptions, Problem, map_bundle};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
struct Seq(AtomicU64);
impl IdGenerator for Seq {
    fn next_uuid(&self) -> uuid::Uuid {
        uuid::Uuid::from_u128(u128::from(self.0.fetch_add(1, Ordering::Relaxed) + 1))
    }
}

fn opts() -> MapOptions {
    MapOptions {
        organization_id: OrganizationId::from_uuid(uuid::Uuid::from_u128(u128::MAX)),
        from_outside: false,
    }
}

fn map(v: &Value) -> Result<salus_fhir::MappedBundle, BundleError> {
    map_bundle(&serde_json::to_vec(v).unwrap(), opts(), &Seq::default())
}

const MODELLED: [(&str, Option<RecordKind>); 12] = [
    ("Patient", None),
    ("Practitioner", None),
    ("Organization", None),
    ("Encounter", Some(RecordKind::Encounter)),
    ("Observation", Some(RecordKind::Observation)),
    ("DiagnosticReport", Some(RecordKind::DiagnosticReport)),
    ("MedicationRequest", Some(RecordKind::Medication)),
    ("Immunization", Some(RecordKind::Immunization)),
    ("Condition", Some(RecordKind::Problem)),
    ("AllergyIntolerance", Some(RecordKind::Allergy)),
    ("Procedure", Some(RecordKind::Procedure)),
    ("DocumentReference", Some(RecordKind::ClinicalNote)),
];

#[test]
fn every_fixture_maps_with_counts_computed_from_its_json() {
    for path in salus_tests::synthea_bundles() {
        let bytes = std::fs::read(&path).unwrap();
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
        for e in json["entry"].as_array().unwrap() {
            *by_type
                .entry(e["resource"]["resourceType"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        let mapped =
            map_bundle(&bytes, opts(), &Seq::default()).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let counts = mapped.draft.counts();
        let n = |t: &str| by_type.get(t).copied().unwrap_or(0) as u64;
        assert_eq!(counts.patients, n("Patient"));
        assert_eq!(counts.practitioners, n("Practitioner"));
        assert_eq!(counts.provider_organizations, n("Organization"));
        for (t, kind) in MODELLED {
            if let Some(kind) = kind {
                assert_eq!(
                    counts.records.get(&kind).copied().unwrap_or(0),
                    n(t),
                    "{t} in {path:?}"
                );
            }
        }
        // Claims with an explanation of benefit become statements through it; the claims
        // without one (not adjudicated) are skipped.
        let explained = json["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["resource"]["resourceType"] == "ExplanationOfBenefit")
            .count();
        assert_eq!(counts.statements, explained as u64, "{path:?}");
        let mut expected_skipped: BTreeMap<String, usize> = by_type
            .iter()
            .filter(|(t, _)| !MODELLED.iter().any(|(m, _)| m == t))
            .filter(|(t, _)| *t != "ExplanationOfBenefit")
            .map(|(t, c)| (t.clone(), *c))
            .collect();
        if let Some(claims) = expected_skipped.get_mut("Claim") {
            *claims -= explained;
            if *claims == 0 {
                expected_skipped.remove("Claim");
            }
        }
        assert_eq!(mapped.skipped, expected_skipped, "{path:?}");
        assert_eq!(mapped.resources, json["entry"].as_array().unwrap().len());
    }
}

#[test]
fn fixture_values_come_through() {
    let Some(path) = salus_tests::synthea_bundles().into_iter().next() else {
        return;
    };
    let bytes = std::fs::read(&path).unwrap();
    let json: Value = serde_json::from_slice(&bytes).unwrap();
    let mapped = map_bundle(&bytes, opts(), &Seq::default()).unwrap();
    // Compare each quantity observation with its JSON.
    let obs_json: Vec<&Value> = json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "Observation")
        .collect();
    let obs: Vec<_> = mapped
        .draft
        .records
        .iter()
        .filter_map(|r| match &r.body {
            RecordBody::Observation(o) => Some(o),
            _ => None,
        })
        .collect();
    assert_eq!(obs.len(), obs_json.len());
    let mut quantities = 0;
    for (o, j) in obs.iter().zip(obs_json) {
        assert_eq!(o.code.code(), j["code"]["coding"][0]["code"].as_str());
        if let Some(ObservationValue::Quantity(q)) = &o.value {
            assert_eq!(Some(q.value), j["valueQuantity"]["value"].as_f64());
            assert_eq!(q.unit.as_deref(), j["valueQuantity"]["unit"].as_str());
            quantities += 1;
        }
        let cat = j["category"][0]["coding"][0]["code"].as_str();
        let want = match cat {
            Some("laboratory") => ObservationCategory::Laboratory,
            Some("vital-signs") => ObservationCategory::VitalSigns,
            _ => ObservationCategory::Other,
        };
        assert_eq!(o.category, want);
        assert_eq!(
            o.components.len(),
            j["component"].as_array().map_or(0, Vec::len)
        );
    }
    assert!(quantities > 0);
    // Every record names its patient, and records made at a visit name the visit's place.
    let patient = mapped.draft.patients[0].id;
    assert!(mapped.draft.records.iter().all(|r| r.patient_id == patient));
    assert!(
        mapped
            .draft
            .records
            .iter()
            .filter(|r| r.encounter_id.is_some())
            .all(|r| r.source.organization.is_some())
    );
}

fn bundle(entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

fn patient_entry() -> Value {
    json!({"fullUrl": "urn:uuid:p1", "resource": {
        "resourceType": "Patient", "id": "p1",
        "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": "MRN-7"}],
        "name": [{"use": "official", "given": ["Ann"], "family": "Lee"}],
        "gender": "female", "birthDate": "1980-02-03"}})
}

fn observation(subject: &str) -> Value {
    json!({"fullUrl": "urn:uuid:o1", "resource": {
        "resourceType": "Observation", "id": "o1", "status": "final",
        "category": [{"coding": [{"code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]},
        "subject": {"reference": subject},
        "effectiveDateTime": "2024-05-01T08:00:00Z",
        "valueQuantity": {"value": 130, "unit": "mg/dL"},
        "referenceRange": [{"low": {"value": 70}, "high": {"value": 99}}]}})
}

#[test]
fn patient_id_references_resolve_like_urn_references() {
    for subject in [
        "urn:uuid:p1",
        "Patient/p1",
        "https://ehr.example/fhir/Patient/p1",
    ] {
        let mapped = map(&bundle(vec![patient_entry(), observation(subject)])).unwrap();
        assert_eq!(
            mapped.draft.records[0].patient_id, mapped.draft.patients[0].id,
            "{subject}"
        );
    }
}

#[test]
fn range_flags_and_units() {
    let mapped = map(&bundle(vec![patient_entry(), observation("Patient/p1")])).unwrap();
    let RecordBody::Observation(o) = &mapped.draft.records[0].body else {
        panic!()
    };
    assert_eq!(o.flag, Some(AbnormalFlag::High));
    assert_eq!(o.reference_range.as_ref().and_then(|r| r.high), Some(99.0));
}

#[test]
fn bad_json_names_the_position_only() {
    let err = map_bundle(
        b"{\"resourceType\": \"Bundle\",\n  \"entry\": [ oops ]}",
        opts(),
        &Seq::default(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        BundleError::Json {
            line: 2,
            column: 14
        }
    );
    assert!(!err.to_string().contains("oops"));
}

#[test]
fn not_a_bundle_or_wrong_type() {
    assert_eq!(
        map(&json!({"resourceType": "Patient"})).unwrap_err(),
        BundleError::NotABundle
    );
    assert_eq!(
        map(&json!({"resourceType": "Bundle", "type": "searchset"})).unwrap_err(),
        BundleError::UnsupportedBundleType
    );
}

#[test]
fn missing_required_element_names_entry_and_element() {
    let mut obs = observation("urn:uuid:p1");
    obs["resource"].as_object_mut().unwrap().remove("code");
    let err = map(&bundle(vec![patient_entry(), obs])).unwrap_err();
    assert_eq!(
        err,
        BundleError::Entry {
            index: 1,
            resource_type: "Observation".into(),
            problem: Problem::Missing("code")
        }
    );
    assert_eq!(
        err.to_string(),
        "entry 1 (Observation): missing required element `code`"
    );
}

#[test]
fn dangling_reference_is_refused() {
    let err = map(&bundle(vec![
        patient_entry(),
        observation("urn:uuid:nobody"),
    ]))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "entry 1 (Observation): reference `subject` points to no entry of the expected type in the bundle"
    );
    let mut obs = observation("urn:uuid:p1");
    obs["resource"]["encounter"] = json!({"reference": "urn:uuid:no-visit"});
    let err = map(&bundle(vec![patient_entry(), obs])).unwrap_err();
    assert!(matches!(
        err,
        BundleError::Entry {
            index: 1,
            problem: Problem::Dangling("encounter"),
            ..
        }
    ));
}

#[test]
fn duplicate_entries_and_bad_dates_are_refused() {
    let err = map(&bundle(vec![patient_entry(), patient_entry()])).unwrap_err();
    assert!(matches!(
        err,
        BundleError::Entry {
            index: 1,
            problem: Problem::Duplicate,
            ..
        }
    ));
    let mut obs = observation("urn:uuid:p1");
    obs["resource"]["effectiveDateTime"] = json!("last tuesday");
    let err = map(&bundle(vec![patient_entry(), obs])).unwrap_err();
    assert!(matches!(
        err,
        BundleError::Entry {
            index: 1,
            problem: Problem::Invalid("effectiveDateTime"),
            ..
        }
    ));
    assert!(!err.to_string().contains("tuesday"));
}

#[test]
fn unmodelled_resources_are_counted_not_fatal() {
    let claim =
        json!({"fullUrl": "urn:uuid:c1", "resource": {"resourceType": "Claim", "id": "c1"}});
    let mapped = map(&bundle(vec![
        patient_entry(),
        claim.clone(),
        json!({"resource": {"resourceType": "Claim"}}),
    ]))
    .unwrap();
    assert_eq!(mapped.skipped.get("Claim"), Some(&2));
    assert!(mapped.draft.records.is_empty());
}

#[test]
fn document_reference_becomes_a_note_with_decoded_text_and_labels() {
    use base64::Engine as _;
    let text = "Discharged home. Follow up in 2 weeks.";
    let doc = json!({"fullUrl": "urn:uuid:d1", "resource": {
        "resourceType": "DocumentReference", "id": "d1", "status": "current",
        "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}]},
        "type": {"coding": [{"system": "http://loinc.org", "code": "18842-5", "display": "Discharge summary"}]},
        "subject": {"reference": "Patient/p1"},
        "date": "2024-06-01T10:00:00Z",
        "author": [{"display": "Dr. Who"}],
        "content": [{"attachment": {"contentType": "text/plain", "data": base64::engine::general_purpose::STANDARD.encode(text)}}]}});
    let mapped = map(&bundle(vec![patient_entry(), doc.clone()])).unwrap();
    let r = &mapped.draft.records[0];
    let RecordBody::ClinicalNote(n) = &r.body else {
        panic!("not a note")
    };
    assert_eq!(n.note_type, NoteType::DischargeSummary);
    assert_eq!(n.text, text);
    assert_eq!(n.title, "Discharge summary");
    assert_eq!(
        r.source.author.as_ref().map(|a| a.as_str()),
        Some("Dr. Who")
    );
    assert!(r.sensitivity.contains(SensitivityLabel::MentalHealth));

    let mut broken = doc;
    broken["resource"]["content"][0]["attachment"]["data"] = json!("%%% not base64");
    let err = map(&bundle(vec![patient_entry(), broken])).unwrap_err();
    assert!(matches!(
        err,
        BundleError::Entry {
            index: 1,
            problem: Problem::Invalid("content.attachment.data"),
            ..
        }
    ));
}

#[test]
fn conditional_references_find_practitioners_by_identifier() {
    let prac = json!({"fullUrl": "urn:uuid:pr1", "resource": {
        "resourceType": "Practitioner", "id": "pr1",
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "999"}],
        "name": [{"prefix": ["Dr."], "given": ["Jo"], "family": "Ng"}]}});
    let med = json!({"fullUrl": "urn:uuid:m1", "resource": {
        "resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"text": "Amoxicillin 250 MG"},
        "subject": {"reference": "urn:uuid:p1"},
        "requester": {"reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|999"},
        "dosageInstruction": [{"text": "Twice a day"}]}});
    let mapped = map(&bundle(vec![patient_entry(), prac, med])).unwrap();
    let r = &mapped.draft.records[0];
    assert_eq!(
        r.source.author.as_ref().map(|a| a.as_str()),
        Some("Dr. Jo Ng")
    );
    let RecordBody::Medication(m) = &r.body else {
        panic!()
    };
    assert_eq!(m.dosage.as_deref(), Some("Twice a day"));
    assert_eq!(mapped.draft.practitioners[0].npi.as_deref(), Some("999"));
}

/// Cents of a JSON amount, for the test's own sums (independent of the mapper's reading).
fn cents_of(v: &Value) -> i64 {
    (v.as_f64().unwrap_or(0.0) * 100.0).round() as i64
}

#[test]
fn statements_of_the_fixtures_reconcile_with_their_claims_and_explanations_of_benefit() {
    let mut statements = 0;
    for path in salus_tests::synthea_bundles() {
        let bytes = std::fs::read(&path).unwrap();
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        let eobs: Vec<&Value> = json["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["resource"])
            .filter(|r| r["resourceType"] == "ExplanationOfBenefit")
            .collect();
        let adjudicated = |item: &Value, code: &str| -> i64 {
            item["adjudication"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|a| {
                    a["category"]["coding"][0]["code"]
                        .as_str()
                        .is_some_and(|c| c.ends_with(code))
                })
                .map(|a| cents_of(&a["amount"]["value"]))
                .sum()
        };
        let (mut charges, mut insurer, mut patient, mut lines) = (0_i64, 0_i64, 0_i64, 0_i64);
        for eob in &eobs {
            let self_pay = eob["insurance"][0]["coverage"]["display"] == "NO_INSURANCE";
            let total = cents_of(&eob["total"][0]["amount"]["value"]);
            charges += total;
            insurer += cents_of(&eob["payment"]["amount"]["value"]);
            if self_pay {
                patient += total;
            }
            lines += 1;
            for item in eob["item"].as_array().unwrap() {
                if item.get("net").is_some() {
                    charges += cents_of(&item["net"]["value"]);
                    patient += adjudicated(item, "line_coinsrnc_amt")
                        + adjudicated(item, "line_bene_ptb_ddctbl_amt");
                    lines += 1;
                }
            }
        }
        let mapped = map_bundle(&bytes, opts(), &Seq::default()).unwrap();
        let st = &mapped.draft.statements;
        assert_eq!(
            st.len(),
            eobs.len(),
            "one statement per explanation: {path:?}"
        );
        let sum = |pick: fn(&salus_domain::billing::LineItem) -> i64| -> i64 {
            st.iter().flat_map(|s| &s.items).map(pick).sum()
        };
        let got_lines = st.iter().map(|s| s.items.len() as i64).sum::<i64>();
        assert_eq!(got_lines, lines, "one line per billed service: {path:?}");
        // Each line's amounts are rounded to the cent on their own: a cent per line at most.
        for (what, got, want) in [
            ("charges", sum(|l| l.charge.minor()), charges),
            ("insurance paid", sum(|l| l.insurance_paid.minor()), insurer),
            ("patient's share", sum(|l| l.patient_share.minor()), patient),
        ] {
            assert!(
                (got - want).abs() <= lines,
                "{what} of {path:?}: {got} cents, the bundle says {want}"
            );
        }
        for s in st {
            s.check().unwrap();
            assert!(s.number.starts_with("C-"));
        }
        statements += st.len();
    }
    if !salus_tests::synthea_bundles().is_empty() {
        assert!(statements > 0, "the fixtures carry adjudicated claims");
    }
}

#[test]
fn an_explanation_of_benefit_becomes_a_statement_in_cents_and_an_unexplained_claim_none() {
    let eob = json!({"fullUrl": "urn:uuid:e1", "resource": {
        "resourceType": "ExplanationOfBenefit", "id": "e1",
        "patient": {"reference": "urn:uuid:p1"},
        "claim": {"reference": "urn:uuid:c1"},
        "created": "2026-11-02T10:00:00+01:00",
        "insurance": [{"coverage": {"display": "Aetna"}}],
        "item": [
            {"sequence": 1, "productOrService": {"text": "Office visit"},
             "encounter": [{"reference": "urn:uuid:v1"}]},
            {"sequence": 2, "productOrService": {"text": "Asthma"}, "diagnosisSequence": [1]},
            {"sequence": 3, "productOrService": {"text": "Flu shot"},
             "servicedPeriod": {"start": "2026-11-01T09:00:00+01:00"},
             "net": {"value": 140.52, "currency": "USD"},
             "adjudication": [
                {"category": {"coding": [{"code": "https://bluebutton.cms.gov/resources/variables/line_coinsrnc_amt"}]},
                 "amount": {"value": 28.104000000000003}},
                {"category": {"coding": [{"code": "https://bluebutton.cms.gov/resources/variables/line_prvdr_pmt_amt"}]},
                 "amount": {"value": 112.41600000000001}},
                {"category": {"coding": [{"code": "https://bluebutton.cms.gov/resources/variables/line_sbmtd_chrg_amt"}]},
                 "amount": {"value": 140.52}}]}],
        "total": [{"amount": {"value": 129.16, "currency": "USD"}}],
        "payment": {"amount": {"value": 112.416}}}});
    let claim =
        json!({"fullUrl": "urn:uuid:c1", "resource": {"resourceType": "Claim", "id": "c1"}});
    let pharmacy =
        json!({"fullUrl": "urn:uuid:c2", "resource": {"resourceType": "Claim", "id": "c2"}});
    let mapped = map(&bundle(vec![patient_entry(), claim, pharmacy, eob])).unwrap();
    assert_eq!(
        mapped.skipped.get("Claim"),
        Some(&1),
        "the claim without an explanation"
    );
    assert_eq!(mapped.skipped.get("ExplanationOfBenefit"), None);
    let st = &mapped.draft.statements[0];
    assert_eq!(st.number, "C-c1");
    assert_eq!(st.issued.to_string(), "2026-11-02");
    assert_eq!(st.due.to_string(), "2026-12-02");
    let cents: Vec<[i64; 4]> = st
        .items
        .iter()
        .map(|l| {
            [
                l.charge.minor(),
                l.insurance_paid.minor(),
                l.adjustments.minor(),
                l.patient_share.minor(),
            ]
        })
        .collect();
    assert_eq!(
        cents,
        vec![[12_916, 0, 12_916, 0], [14_052, 11_242, 0, 2_810]],
        "the insured visit is not billed to the patient; the diagnosis is no line"
    );
    assert_eq!(st.items[1].service_date.to_string(), "2026-11-01");
}
