//! `JsonOut<T>`: a JSON response written straight from `T` with serde.
//!
//! poem-openapi's own `Json<T>` first turns `T` into a `serde_json::Value` tree (one map and
//! one string per field) and then writes the tree; for the record pages that copy was a
//! twentieth of the server's work. `JsonOut` keeps `T`'s OpenAPI schema (from its `Object`
//! derive) and writes the bytes from its `Serialize` derive. The two derives must agree: the
//! types used here keep field names as written and leave a `None` out (`skip_serializing_if` in
//! both derives: the document declares no nullable field)
//! and format times as poem-openapi does ([`rfc3339`]); a test compares both encodings.

use poem::http::{HeaderValue, header};
use poem::{IntoResponse, Response};
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;

const CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// A JSON response body serialised directly from `T`.
#[derive(Debug, Clone)]
pub struct JsonOut<T>(pub T);

impl<T: Type> Payload for JsonOut<T> {
    const CONTENT_TYPE: &'static str = CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        content_type.starts_with("application/json")
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: serde::Serialize + Send> IntoResponse for JsonOut<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => Response::builder()
                .header(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))
                .body(body),
            // Only a map with non-string keys or a failing `Serialize` impl can fail here;
            // none of ours do. Answer like any other server fault (the error itself is not
            // logged: it could quote a value).
            Err(_) => crate::ApiError::internal("could not encode a JSON response").into_response(),
        }
    }
}

/// Times as poem-openapi writes them (`to_rfc3339`: `2026-11-25T09:00:00+00:00`), so a field
/// reads the same whichever encoder wrote it.
pub mod rfc3339 {
    use chrono::{DateTime, Utc};

    pub fn serialize<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&t.to_rfc3339())
    }

    pub mod option {
        use chrono::{DateTime, Utc};

        pub fn serialize<S: serde::Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.collect_str(&t.to_rfc3339()),
                None => s.serialize_none(),
            }
        }
    }
}

/// A FHIR R4 Bundle as `application/fhir+json`, streamed as it is written. Documented as the
/// JSON object it is (a `Bundle` resource), not as opaque bytes.
pub struct FhirJson(pub poem::Body);

impl std::fmt::Debug for FhirJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FhirJson(<body>)")
    }
}

impl Payload for FhirJson {
    const CONTENT_TYPE: &'static str = "application/fhir+json";

    fn check_content_type(content_type: &str) -> bool {
        content_type.starts_with(Self::CONTENT_TYPE)
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(poem_openapi::registry::MetaSchema {
            description: Some(
                "A FHIR R4 Bundle resource (`resourceType` `Bundle`), see \
                 https://hl7.org/fhir/R4/bundle.html",
            ),
            required: vec!["resourceType"],
            ..poem_openapi::registry::MetaSchema::new("object")
        }))
    }
}

impl IntoResponse for FhirJson {
    fn into_response(self) -> Response {
        Response::builder()
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static(Self::CONTENT_TYPE),
            )
            .body(self.0)
    }
}
