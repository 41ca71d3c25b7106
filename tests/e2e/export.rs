//! Downloads end to end: the FHIR export holds exactly what the patient may see, with
//! references that resolve; it needs a recent password and is audited; it and the IPS parse
//! with an independent R4 validator; an export imported elsewhere gives the same records;
//! our IPS carries what a HAPI FHIR server's IPS of the same patient carries.

use crate::identity::{call, staff};
use crate::records::linked_patient;
use crate::{TestApp, spawn_app};
use poem::http::StatusCode;
use salus_domain::PatientId;
use salus_domain::account::StaffRole;
use salus_domain::record::{ClinicalRecord, ObservationValue, RecordBody, RecordKind};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// GET with a bearer token: status, headers of interest, body bytes.
pub(crate) async fn download(
    app: &TestApp,
    path: &str,
    bearer: &str,
) -> (StatusCode, String, String, Vec<u8>) {
    let resp = app
        .client
        .get(path)
        .header("authorization", format!("Bearer {bearer}"))
        .send()
        .await
        .0;
    let status = resp.status();
    let header = |h: &str| {
        resp.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (ctype, disposition) = (header("content-type"), header("content-disposition"));
    let body = resp.into_body().into_vec().await.unwrap();
    (status, ctype, disposition, body)
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("the download is JSON")
}

/// Resources of a bundle by type.
fn counts(bundle: &Value) -> BTreeMap<String, u64> {
    let mut c = BTreeMap::new();
    for e in bundle["entry"].as_array().unwrap() {
        *c.entry(e["resource"]["resourceType"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    c
}

/// Every `reference` anywhere in `v`.
fn references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "reference" {
                    out.extend(x.as_str().map(str::to_owned));
                } else {
                    references(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| references(x, out)),
        _ => {}
    }
}

fn assert_references_resolve(bundle: &Value) {
    let urls: BTreeSet<&str> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["fullUrl"].as_str().unwrap())
        .collect();
    let mut refs = Vec::new();
    references(bundle, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        assert!(
            urls.contains(r.as_str()),
            "reference {r} points outside the bundle"
        );
    }
}

const RESOURCE_OF_KIND: [(RecordKind, &str); 9] = [
    (RecordKind::Encounter, "Encounter"),
    (RecordKind::Observation, "Observation"),
    (RecordKind::DiagnosticReport, "DiagnosticReport"),
    (RecordKind::Medication, "MedicationRequest"),
    (RecordKind::Immunization, "Immunization"),
    (RecordKind::Problem, "Condition"),
    (RecordKind::Allergy, "AllergyIntolerance"),
    (RecordKind::Procedure, "Procedure"),
    (RecordKind::ClinicalNote, "DocumentReference"),
];

#[tokio::test]
async fn the_fhir_export_holds_what_the_patient_may_see_and_is_audited() {
    let app = spawn_app(2).await;
    let (ann, chart) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    let doc = staff(&app, "demo-clinic", "doc@clinic.test", StaffRole::Clinician).await;
    // A note the clinic holds back: not the patient's to download until it is released.
    let held =
        json!({"kind": "note", "title": "Held back", "text": "Not yet.", "sensitive": ["genetic"]});
    let (status, filed) = call(
        &app,
        "POST",
        &format!("/api/v1/patients/{chart}/records"),
        &doc,
        Some(held),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{filed}");
    let held_id = filed["record"]["id"].as_str().unwrap().to_owned();

    let (status, ctype, disposition, body) = download(&app, "/api/v1/export/fhir", &ann).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctype, "application/fhir+json");
    assert!(
        disposition.starts_with("attachment; filename=\"health-record-"),
        "{disposition}"
    );
    let bundle = json_of(&body);
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    assert_references_resolve(&bundle);

    // Exactly the released records of the chart, one resource each, and the patient.
    let patient = PatientId::parse(&chart).unwrap();
    let visible = salus_domain::record::RecordRepository::count_by_kind(
        &app.store,
        patient,
        Some(salus_domain::Clock::now(&salus_domain::SystemClock)),
    )
    .await
    .unwrap();
    let mut expected: BTreeMap<String, u64> = visible
        .iter()
        .map(|(k, n)| {
            let t = RESOURCE_OF_KIND.iter().find(|(x, _)| x == k).unwrap().1;
            (t.to_owned(), *n)
        })
        .collect();
    expected.insert("Patient".into(), 1);
    assert_eq!(counts(&bundle), expected);
    let ids: BTreeSet<&str> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap())
        .collect();
    assert!(
        !ids.contains(held_id.as_str()),
        "a held record was exported"
    );

    // Released, it is in the next download.
    let (status, _) = call(
        &app,
        "POST",
        &format!("/api/v1/records/{held_id}/release"),
        &doc,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, _, _, body) = download(&app, "/api/v1/export/fhir", &ann).await;
    let note = json_of(&body)["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource"]["id"] == held_id.as_str())
        .cloned()
        .expect("the released note is exported");
    assert_eq!(note["resource"]["resourceType"], "DocumentReference");
    assert_eq!(note["resource"]["meta"]["security"][0]["code"], "GDIS");

    // The access history names each download.
    let (status, history) = call(&app, "GET", "/api/v1/me/access-history", &ann, None).await;
    assert_eq!(status, StatusCode::OK);
    let exports = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "export_fhir" && e["who"] == "you")
        .count();
    assert_eq!(exports, 2);

    // PDFs: the health summary and one kind; a kind that is not one is refused.
    let (status, ctype, disposition, pdf) = download(&app, "/api/v1/export/pdf", &ann).await;
    assert_eq!(
        (status, ctype.as_str()),
        (StatusCode::OK, "application/pdf")
    );
    assert!(pdf.starts_with(b"%PDF-"));
    assert!(disposition.contains("health-summary-"), "{disposition}");
    let (status, _, disposition, pdf) =
        download(&app, "/api/v1/export/pdf?kind=observation", &ann).await;
    assert_eq!(status, StatusCode::OK);
    assert!(pdf.starts_with(b"%PDF-"));
    assert!(disposition.contains("observation-"), "{disposition}");
    let (status, _, _, body) = download(&app, "/api/v1/export/pdf?kind=x-rays", &ann).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json_of(&body)["code"], "invalid_kind");
    let (_, history) = call(&app, "GET", "/api/v1/me/access-history", &ann, None).await;
    let pdfs = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "export_pdf")
        .count();
    assert_eq!(pdfs, 2, "one entry per PDF made, none for the refused one");

    // The IPS download is a document whose first entry is its Composition.
    let (status, ctype, _, body) = download(&app, "/api/v1/export/ips", &ann).await;
    assert_eq!(
        (status, ctype.as_str()),
        (StatusCode::OK, "application/fhir+json")
    );
    let ips = json_of(&body);
    assert_eq!(ips["type"], "document");
    assert_eq!(ips["entry"][0]["resource"]["resourceType"], "Composition");
    assert_references_resolve(&ips);
}

#[tokio::test]
async fn a_download_needs_the_password_entered_within_five_minutes() {
    let app = spawn_app(1).await;
    let (ann, _) = linked_patient(&app, "SYN0000000", "ann@example.org").await;
    // Six minutes pass after the sign-in.
    app.advance_minutes(6);
    let before = crate::records::audit_entries(&app).await;
    for path in ["/api/v1/export/fhir", "/api/v1/export/ips"] {
        let (status, _, _, body) = download(&app, path, &ann).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(json_of(&body)["code"], "reauthentication_required");
    }
    assert_eq!(
        crate::records::audit_entries(&app).await,
        before,
        "nothing was read"
    );
    let (status, b) = call(
        &app,
        "POST",
        "/api/v1/me/reauthenticate",
        &ann,
        Some(json!({"password": crate::auth::PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{b}");
    let (status, _, _, _) = download(&app, "/api/v1/export/fhir", &ann).await;
    assert_eq!(status, StatusCode::OK);
}

/// What the round trip compares: kind, code, value and date of every record.
fn fingerprint(r: &ClinicalRecord) -> (String, String, String, String) {
    let code = r.body.code().map_or_else(String::new, |c| {
        format!("{}|{}", c.system().unwrap_or(""), c.code().unwrap_or(""))
    });
    let value = match &r.body {
        RecordBody::Observation(o) => match &o.value {
            Some(ObservationValue::Quantity(q)) => {
                format!("{} {}", q.value, q.unit.as_deref().unwrap_or(""))
            }
            Some(v) => v.text(),
            None => o
                .components
                .iter()
                .map(|c| c.value.as_ref().map(|v| v.text()).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(","),
        },
        RecordBody::ClinicalNote(n) => format!("{}:{}", n.title, n.text.len()),
        other => other.status().to_owned(),
    };
    let date = r
        .body
        .effective_at()
        .map(|t| t.to_rfc3339())
        .unwrap_or_default();
    (r.kind().code().to_owned(), code, value, date)
}

async fn all_records(store: &salus_store::Store, patient: PatientId) -> Vec<ClinicalRecord> {
    use salus_domain::record::{RecordQuery, RecordRepository};
    let mut out = Vec::new();
    for kind in RecordKind::ALL {
        let mut after = None;
        loop {
            let page = store
                .list_for_patient(patient, *kind, &RecordQuery::default(), after, 100)
                .await
                .unwrap();
            after = page.next;
            out.extend(page.items);
            if after.is_none() {
                break;
            }
        }
    }
    out
}

/// The codes of the resources one IPS section points to.
fn section_codes(ips: &Value, loinc: &str) -> BTreeSet<String> {
    let by_url: BTreeMap<&str, &Value> = ips["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["fullUrl"].as_str().unwrap(), &e["resource"]))
        .collect();
    let composition = &ips["entry"][0]["resource"];
    let Some(section) = composition["section"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["code"]["coding"][0]["code"] == loinc)
    else {
        return BTreeSet::new();
    };
    section["entry"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|r| by_url.get(r["reference"].as_str()?))
        .filter_map(|r| {
            let concept = ["code", "vaccineCode", "medicationCodeableConcept"]
                .iter()
                .find_map(|k| r.get(*k))?;
            concept["coding"][0]["code"].as_str().map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn fixture_exports_validate_round_trip_and_match_the_reference_ips() {
    let bundles = salus_tests::synthea_bundles();
    if bundles.is_empty() {
        return; // synthea_bundles() already said so loudly (and failed under CI=true).
    }
    let validator = salus_tests::fhir_validator();
    let app = spawn_app(0).await;
    let org = salus_server::importer::target_org(&app.store, Some("demo-clinic"))
        .await
        .unwrap();
    let mut documents: Vec<Vec<u8>> = Vec::new();
    let mut compared = 0;
    for (n, path) in bundles.iter().enumerate() {
        salus_server::importer::import_file(&app.store, &org, path, false, crate::clock())
            .await
            .unwrap();
        let source: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let mrn = &crate::bundle_mrn(&source);
        let (token, chart) = linked_patient(&app, mrn, &format!("p{n}@example.org")).await;
        let (status, _, _, fhir) = download(&app, "/api/v1/export/fhir", &token).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _, ips) = download(&app, "/api/v1/export/ips", &token).await;
        assert_eq!(status, StatusCode::OK);

        // Round trip: the export, imported into an empty database, gives the same records.
        let fresh = crate::fresh_store().await;
        let clinic = salus_server::importer::target_org(&fresh, Some("demo-clinic"))
            .await
            .unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &fhir).unwrap();
        salus_server::importer::import_file(&fresh, &clinic, file.path(), false, crate::clock())
            .await
            .unwrap();
        let original = all_records(&app.store, PatientId::parse(&chart).unwrap()).await;
        let copy_chart = salus_domain::patient::PatientRepository::find_by_mrn(
            &fresh,
            clinic.id,
            &salus_domain::text::Mrn::parse(mrn).unwrap(),
        )
        .await
        .unwrap()
        .expect("the exported patient imports");
        let copy = all_records(&fresh, copy_chart.id).await;
        let a: BTreeSet<_> = original.iter().map(fingerprint).collect();
        let b: BTreeSet<_> = copy.iter().map(fingerprint).collect();
        assert_eq!(
            original.len(),
            copy.len(),
            "{}: record count",
            path.display()
        );
        assert_eq!(
            a,
            b,
            "{}: records differ after the round trip",
            path.display()
        );

        // Against the HAPI FHIR server's IPS of the same patient, where we have one.
        let stem = path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace("-bundle.json", "");
        let reference = path
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join(format!("ips-reference/{stem}-ips.json"));
        if reference.is_file() {
            let ours = json_of(&ips);
            let theirs: Value =
                serde_json::from_slice(&std::fs::read(&reference).unwrap()).unwrap();
            for (loinc, what) in [
                ("48765-2", "allergies"),
                ("10160-0", "active medications"),
                ("11450-4", "problems"),
                ("11369-6", "immunizations"),
            ] {
                let mut expected = section_codes(&theirs, loinc);
                // On purpose: with nothing recorded, HAPI lists a placeholder allergy coded
                // "no-allergy-info"; we say "none recorded" in the narrative and set the
                // section's emptyReason, because we cannot tell "none" from "not recorded".
                expected.remove("no-allergy-info");
                compared += expected.len();
                assert_eq!(section_codes(&ours, loinc), expected, "{stem}: {what}");
            }
        }
        // The printout of results, read back by an independent PDF reader, names every
        // numeric result of the bundle with its value.
        if let Some(python) = &validator {
            let (status, _, _, pdf) =
                download(&app, "/api/v1/export/pdf?kind=observation", &token).await;
            assert_eq!(status, StatusCode::OK);
            let text = salus_tests::pdf_text(python, &pdf).unwrap();
            assert!(text.contains("Page 1 of"), "{stem}: page numbers");
            let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
            // Made at a time in the clinic's zone (New York for the demo clinic), named.
            assert!(
                flat.contains(" EST") || flat.contains(" EDT"),
                "{stem}: the time the PDF was made is in the clinic's zone"
            );
            let mut named = 0;
            for o in source["entry"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| &e["resource"])
                .filter(|r| r["resourceType"] == "Observation" && r["valueQuantity"].is_object())
            {
                let q = &o["valueQuantity"];
                let value = salus_domain::record::ObservationValue::Quantity(
                    salus_domain::record::Quantity {
                        value: q["value"].as_f64().unwrap(),
                        unit: q["unit"].as_str().map(str::to_owned),
                    },
                )
                .text();
                let name = o["code"]["text"]
                    .as_str()
                    .or(o["code"]["coding"][0]["display"].as_str())
                    .unwrap();
                let line = format!("{name}: {value}");
                let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
                assert!(flat.contains(&line), "{stem}: the PDF lacks {line:?}");
                named += 1;
            }
            assert!(named > 0, "{stem}: results compared");
        }
        documents.push(fhir);
        documents.push(ips);
    }
    assert!(
        compared > 10,
        "the reference IPS sections were compared ({compared} codes)"
    );
    if let Some(python) = validator {
        let docs: Vec<&[u8]> = documents.iter().map(Vec::as_slice).collect();
        match salus_tests::validate_fhir(&python, &docs) {
            Ok(report) => eprintln!("{report}"),
            Err(report) => panic!("the FHIR validator refused an export:\n{report}"),
        }
    }
}
