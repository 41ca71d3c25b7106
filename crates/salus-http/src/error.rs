//! The API's error shape and status mapping.

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};
use salus_domain::RepoError;
use salus_domain::organization::DirectoryError;

/// Every error body: a stable machine-readable `code` and a human sentence.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct ErrorBody {
    /// Stable identifier of the error, e.g. `not_found`, `storage_unavailable`.
    pub code: String,
    /// A sentence for people; never contains submitted data.
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: &str, message: &str) -> Json<Self> {
        Json(Self {
            code: code.to_owned(),
            message: message.to_owned(),
        })
    }
}

/// Errors any operation may answer.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The storage is unreachable; retry later.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
    /// An unexpected server fault; details are in the server log.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
}

impl ApiError {
    /// A server fault: logged with its cause, answered with a stable code only.
    pub fn internal(cause: &'static str) -> Self {
        tracing::error!(cause, "request failed");
        Self::Internal(ErrorBody::new(
            "internal",
            "Something went wrong on our side.",
        ))
    }
}

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::Unavailable => Self::Unavailable(ErrorBody::new(
                "storage_unavailable",
                "The service is temporarily unavailable.",
            )),
            RepoError::Conflict(what) | RepoError::Corrupt(what) => {
                tracing::error!(detail = what, "unexpected storage error on a read path");
                Self::Internal(ErrorBody::new(
                    "internal",
                    "Something went wrong on our side.",
                ))
            }
        }
    }
}

impl From<DirectoryError> for ApiError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Repo(r) => r.into(),
        }
    }
}

/// Every error poem or poem-openapi answers before an operation runs (unknown path, method
/// not allowed, missing or wrong `Content-Type`, a parameter or body that does not parse, no
/// credentials) in the API's shape, `{"code", "message"}`, with its status kept. Answers that
/// are already JSON (our own) pass unchanged. Messages never quote the request.
pub(crate) async fn as_json(e: poem::Error) -> poem::Response {
    error_as_json(e)
}

/// [`as_json`] for callers outside the API's routes (the application's outer router, which
/// refuses a path that does not decode before the API sees it).
pub fn error_as_json(e: poem::Error) -> poem::Response {
    use poem::http::StatusCode;
    let (code, message) = if e.is::<poem::error::NotFoundError>() {
        ("not_found", "No such API endpoint.")
    } else if e.is::<poem::error::MethodNotAllowedError>() {
        (
            "method_not_allowed",
            "This endpoint does not accept that method.",
        )
    } else if e.is::<poem_openapi::error::ParseRequestPayloadError>() {
        (
            "invalid_body",
            "The request body is not valid JSON for this endpoint.",
        )
    } else if e.is::<poem_openapi::error::ContentTypeError>() {
        (
            "unsupported_media_type",
            "Send the request body as application/json.",
        )
    } else if e.is::<poem_openapi::error::ParseParamError>()
        || e.is::<poem_openapi::error::ParsePathError>()
        || e.is::<poem::error::ParsePathError>()
        || e.is::<poem::error::ParseQueryError>()
    {
        (
            "invalid_parameter",
            "A parameter of this request is missing or not valid.",
        )
    } else if e.is::<poem_openapi::error::AuthorizationError>() {
        ("unauthorized", "Sign in to continue.")
    } else {
        let resp = e.into_response();
        let json = resp
            .headers()
            .get(poem::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if json {
            return resp;
        }
        return match resp.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => json_error(
                resp.status(),
                "unsupported_media_type",
                "Send the request body as application/json.",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => json_error(
                resp.status(),
                "payload_too_large",
                "The request is larger than this server accepts.",
            ),
            s if s.is_client_error() => json_error(s, "bad_request", "This request is not valid."),
            s => {
                tracing::error!(status = s.as_u16(), "a request failed outside an operation");
                json_error(s, "internal", "Something went wrong on our side.")
            }
        };
    };
    json_error(e.status(), code, message)
}

/// An error answer in the API's shape, `{"code", "message"}`, for answers made outside an
/// operation (middleware, fallbacks).
pub fn json_error(status: poem::http::StatusCode, code: &str, message: &str) -> poem::Response {
    let body = serde_json::json!({ "code": code, "message": message });
    poem::Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(body.to_string())
}
