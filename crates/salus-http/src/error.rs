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

/// Unknown API paths answer JSON with a stable code, like every other error.
pub(crate) async fn not_found(_: poem::error::NotFoundError) -> poem::Response {
    json_error(
        poem::http::StatusCode::NOT_FOUND,
        "not_found",
        "No such API endpoint.",
    )
}

/// A body that is not the JSON the operation expects.
pub(crate) async fn bad_body(_: poem_openapi::error::ParseRequestPayloadError) -> poem::Response {
    json_error(
        poem::http::StatusCode::BAD_REQUEST,
        "invalid_body",
        "The request body is not valid JSON for this endpoint.",
    )
}

/// A missing or malformed `Authorization` header.
pub(crate) async fn no_credentials(_: poem_openapi::error::AuthorizationError) -> poem::Response {
    json_error(
        poem::http::StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Sign in to continue.",
    )
}

/// A known path with a method it does not accept.
pub(crate) async fn method_not_allowed(_: poem::error::MethodNotAllowedError) -> poem::Response {
    json_error(
        poem::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This endpoint does not accept that method.",
    )
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
