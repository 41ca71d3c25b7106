//! Downloads: the whole chart as FHIR R4, the International Patient Summary, and PDF
//! printouts. The domain decides who may export what and audits it; this module
//! authenticates, checks nothing itself, and streams or renders what the export reads.

use crate::error::{ApiError, ErrorBody};
use crate::payload::FhirJson;
use crate::records::{audit_unavailable, no_chart, not_found, patient_param, request_id};
use crate::session::SessionToken;
use poem::{Body, Request};
use poem_openapi::param::Query;
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, OpenApi};
use salus_domain::RepoError;
use salus_domain::chart::{ExportError, RecordsService};
use salus_domain::export::{ChartExport, ExportFormat, ExportRequest, file_name};
use salus_domain::record::RecordKind;

/// The answer of a FHIR download (the whole chart, or the patient summary).
#[derive(ApiResponse)]
pub(crate) enum FhirExport {
    /// A FHIR R4 Bundle; `Content-Disposition` names the file.
    #[oai(status = 200)]
    Fhir(FhirJson, #[oai(header = "Content-Disposition")] String),
    /// `reauthentication_required`: enter the password at `/v1/me/reauthenticate` first
    /// (downloads need it within the last 5 minutes).
    #[oai(status = 403)]
    ReauthRequired(Json<ErrorBody>),
    /// `no_chart` or `not_found`.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

/// The answer of a PDF download.
#[derive(ApiResponse)]
pub(crate) enum PdfExport {
    /// A PDF; `Content-Disposition` names the file.
    #[oai(status = 200, content_type = "application/pdf")]
    Pdf(
        Binary<Vec<u8>>,
        #[oai(header = "Content-Disposition")] String,
    ),
    /// `invalid_kind`: not a kind of record.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// `reauthentication_required`: enter the password at `/v1/me/reauthenticate` first
    /// (downloads need it within the last 5 minutes).
    #[oai(status = 403)]
    ReauthRequired(Json<ErrorBody>),
    /// `no_chart` or `not_found`.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

/// Why an export did not start; each download answers it in its own shape.
enum Refused {
    Reauthenticate,
    NoChart,
    NotFound,
}

/// Both downloads answer a refusal alike (their variants share names).
macro_rules! answer_refusal {
    ($($t:ty),+) => {$(
        impl From<Refused> for $t {
            fn from(r: Refused) -> Self {
                match r {
                    Refused::Reauthenticate => Self::ReauthRequired(reauth_required()),
                    Refused::NoChart => Self::NotFound(no_chart()),
                    Refused::NotFound => Self::NotFound(not_found()),
                }
            }
        }
    )+};
}

answer_refusal!(FhirExport, PdfExport);

fn reauth_required() -> Json<ErrorBody> {
    ErrorBody::new(
        "reauthentication_required",
        "Enter your password again to download your records.",
    )
}

/// An export whose records could not all be read, after the answer was decided.
fn read_failed(e: RepoError, cause: &'static str) -> ApiError {
    tracing::warn!(cause, "an export could not read the records");
    ApiError::from(e)
}

pub(crate) struct ExportApi {
    pub(crate) records: RecordsService,
}

/// The `Content-Disposition` of a download (see [`file_name`]).
fn attachment(format: ExportFormat, kind: Option<RecordKind>, export: &ChartExport) -> String {
    let name = file_name(format, kind, export.generated_at());
    format!("attachment; filename=\"{name}\"")
}

impl ExportApi {
    /// Authenticates, then asks the domain for the export.
    async fn start(
        &self,
        req: &Request,
        token: &SessionToken,
        patient_id: Option<&str>,
        format: ExportFormat,
        kinds: Vec<RecordKind>,
    ) -> Result<Result<ChartExport, Refused>, ApiError> {
        let Ok(actor) = token.actor() else {
            return Ok(Err(Refused::NoChart));
        };
        let Ok(patient) = patient_param(patient_id) else {
            return Ok(Err(Refused::NotFound));
        };
        let request = ExportRequest {
            patient,
            format,
            kinds,
            authenticated_at: token.authenticated_at(),
        };
        match self
            .records
            .export(&actor, request, request_id(req).as_deref())
            .await
        {
            Ok(export) => Ok(Ok(export)),
            Err(ExportError::ReauthenticationRequired) => Ok(Err(Refused::Reauthenticate)),
            Err(ExportError::NoChart) => Ok(Err(Refused::NoChart)),
            Err(ExportError::NotFound) => Ok(Err(Refused::NotFound)),
            Err(ExportError::AuditUnavailable) => Err(audit_unavailable()),
            Err(ExportError::Repo(r)) => Err(r.into()),
        }
    }
}

#[OpenApi(tag = "crate::records::ApiTags::Records")]
impl ExportApi {
    /// Everything the caller may see of the chart as one FHIR R4 `collection` Bundle
    /// (`application/fhir+json`): Patient, Encounter, Observation, DiagnosticReport,
    /// MedicationRequest, Immunization, Condition, AllergyIntolerance, Procedure and
    /// DocumentReference, with `urn:uuid:` references between them. Streamed: large charts
    /// arrive as they are read. Needs the password entered within 5 minutes; audited.
    #[oai(path = "/v1/export/fhir", method = "get", operation_id = "exportFhir")]
    async fn fhir(
        &self,
        req: &Request,
        token: SessionToken,
        patient_id: Query<Option<String>>,
    ) -> Result<FhirExport, ApiError> {
        let export = match self
            .start(
                req,
                &token,
                patient_id.0.as_deref(),
                ExportFormat::Fhir,
                Vec::new(),
            )
            .await?
        {
            Ok(e) => e,
            Err(refused) => return Ok(refused.into()),
        };
        let disposition = attachment(ExportFormat::Fhir, None, &export);
        let stream = salus_fhir::export::bundle_body(export, uuid::Uuid::now_v7());
        Ok(FhirExport::Fhir(
            FhirJson(Body::from_bytes_stream(stream)),
            disposition,
        ))
    }

    /// The International Patient Summary of the chart: a FHIR R4 `document` Bundle whose
    /// Composition holds allergies, medications and problems (always), and immunizations,
    /// procedures, latest results and vital signs where there are any, each with a readable
    /// narrative. Needs the password entered within 5 minutes; audited.
    #[oai(path = "/v1/export/ips", method = "get", operation_id = "exportIps")]
    async fn ips(
        &self,
        req: &Request,
        token: SessionToken,
        patient_id: Query<Option<String>>,
    ) -> Result<FhirExport, ApiError> {
        let export = match self
            .start(
                req,
                &token,
                patient_id.0.as_deref(),
                ExportFormat::Ips,
                Vec::new(),
            )
            .await?
        {
            Ok(e) => e,
            Err(refused) => return Ok(refused.into()),
        };
        let disposition = attachment(ExportFormat::Ips, None, &export);
        let document =
            salus_fhir::ips::ips_document(export, uuid::Uuid::now_v7(), uuid::Uuid::now_v7())
                .await
                .map_err(|e| read_failed(e, "the patient summary could not be read"))?;
        Ok(FhirExport::Fhir(
            FhirJson(Body::from_vec(document.to_string().into_bytes())),
            disposition,
        ))
    }
    /// A printable PDF (`application/pdf`, real text): with no `kind`, the health summary
    /// (allergies, medications, problems, immunizations, procedures, latest results and vital
    /// signs); with `kind` (`observation`, `medication`, ...), every record of that kind,
    /// newest first, notes with their text. Each page names the patient, their date of birth,
    /// the source organisation, the date made and "Page n of N". Needs the password entered
    /// within 5 minutes; audited.
    #[oai(path = "/v1/export/pdf", method = "get", operation_id = "exportPdf")]
    async fn pdf(
        &self,
        req: &Request,
        token: SessionToken,
        patient_id: Query<Option<String>>,
        kind: Query<Option<String>>,
    ) -> Result<PdfExport, ApiError> {
        let kind = match kind.0.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
            None => None,
            Some(code) => match RecordKind::from_code(code) {
                Some(k) => Some(k),
                None => {
                    return Ok(PdfExport::BadRequest(ErrorBody::new(
                        "invalid_kind",
                        "kind must be one of encounter, observation, diagnostic_report, medication, immunization, problem, allergy, procedure, clinical_note.",
                    )));
                }
            },
        };
        let export = match self
            .start(
                req,
                &token,
                patient_id.0.as_deref(),
                ExportFormat::Pdf,
                kind.into_iter().collect(),
            )
            .await?
        {
            Ok(e) => e,
            Err(refused) => return Ok(refused.into()),
        };
        let disposition = attachment(ExportFormat::Pdf, kind, &export);
        let pdf = salus_pdf::export_pdf(export, kind)
            .await
            .map_err(|e| read_failed(e, "the PDF could not be made"))?;
        Ok(PdfExport::Pdf(Binary(pdf), disposition))
    }
}
