//! The OpenAPI document as served and committed, and what the router derives from it.
//!
//! poem-openapi documents what each operation answers. Some answers come from the layers
//! around the operations instead, for every operation alike: `400 invalid_parameter` or
//! `invalid_body` when a parameter or the body does not parse, `413 payload_too_large` and
//! `415 unsupported_media_type` for bodies, `429 too_many_requests` on the sign-in,
//! registration and recovery endpoints, `401 unauthorized` on every operation that takes a
//! session (its check runs before the operation). [`complete`] adds those to the document so that it
//! and the answers agree; [`AllowTable`] answers which methods a path takes (the `Allow`
//! header of a 405).

use serde_json::{Value, json};

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {
            "application/json; charset=utf-8": {
                "schema": { "$ref": "#/components/schemas/ErrorBody" }
            }
        }
    })
}

/// Whether the per-address limit applies to a request of this API path (below `/api`):
/// every `POST` that takes a password, a code or an emailed token without a session. The
/// application's limiter asks this, and the document lists `429` where it is true.
pub fn is_rate_limited(method: &str, path: &str) -> bool {
    method.eq_ignore_ascii_case("post")
        && (path.starts_with("/v1/auth/")
            || path.starts_with("/v1/staff/setup")
            || path == "/v1/me/email/confirm")
}

/// Whether a request of this API path (below `/api`) may carry a message's files, and so a
/// body larger than the usual limit: starting a conversation and writing in one.
pub fn carries_files(method: &str, path: &str) -> bool {
    method.eq_ignore_ascii_case("post")
        && (path == "/v1/threads"
            || path
                .strip_prefix("/v1/threads/")
                .and_then(|rest| rest.strip_suffix("/messages"))
                .is_some_and(|id| !id.is_empty() && !id.contains('/')))
}

/// The document with the answers of the surrounding layers added to every operation they
/// can come from, request bodies marked as refusing unknown fields (every input type has
/// `deny_unknown_fields`), and a `kind` query parameter documented as the record kinds it
/// takes. Leaves a document it cannot read unchanged.
pub(crate) fn complete(spec: &str) -> String {
    let Ok(mut doc) = serde_json::from_str::<Value>(spec) else {
        return spec.to_owned();
    };
    let mut bodies = Vec::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                if !METHODS.contains(&method.as_str()) {
                    continue;
                }
                let has_params = op
                    .get("parameters")
                    .and_then(Value::as_array)
                    .is_some_and(|p| !p.is_empty());
                let has_body = op.get("requestBody").is_some();
                let signed_in = op
                    .get("security")
                    .and_then(Value::as_array)
                    .is_some_and(|s| !s.is_empty());
                if let Some(content) = op
                    .pointer("/requestBody/content")
                    .and_then(Value::as_object)
                {
                    bodies.extend(
                        content
                            .values()
                            .filter_map(|c| c.pointer("/schema/$ref").and_then(Value::as_str))
                            .filter_map(|r| r.strip_prefix("#/components/schemas/"))
                            .map(str::to_owned),
                    );
                }
                if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                    for param in params {
                        if param["name"] == "kind" && param["in"] == "query" {
                            param["schema"] = json!({ "$ref": "#/components/schemas/RecordKind" });
                        }
                    }
                }
                let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                    continue;
                };
                let mut add = |status: &str, description: &str| {
                    responses
                        .entry(status)
                        .or_insert_with(|| error_response(description));
                };
                if has_params || has_body {
                    add(
                        "400",
                        "`invalid_parameter`: a parameter is missing or does not parse; \
                         `invalid_body`: the body is not the JSON this operation takes.",
                    );
                }
                if has_body {
                    add(
                        "413",
                        "`payload_too_large`: the body is larger than the server accepts.",
                    );
                    add(
                        "415",
                        "`unsupported_media_type`: the body is not sent as `application/json`.",
                    );
                }
                if signed_in {
                    add(
                        "401",
                        "`unauthorized`: no session token, or one that names no live session.",
                    );
                }
                if is_rate_limited(method, path) {
                    add(
                        "429",
                        "`too_many_requests`: too many requests from this address; see `Retry-After`.",
                    );
                }
            }
        }
    }
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for name in bodies {
            if let Some(schema) = schemas.get_mut(&name).and_then(Value::as_object_mut) {
                schema.insert("additionalProperties".into(), Value::Bool(false));
            }
        }
    }
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| spec.to_owned())
}

/// Which methods each documented path takes.
#[derive(Debug)]
pub(crate) struct AllowTable {
    /// Path segments (`None` for a `{parameter}`) and the methods, as an `Allow` value.
    routes: Vec<(Vec<Option<String>>, String)>,
}

impl AllowTable {
    pub(crate) fn from_spec(spec: &str) -> Self {
        let doc: Value = serde_json::from_str(spec).unwrap_or(Value::Null);
        let mut routes = Vec::new();
        if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
            for (path, item) in paths {
                let segments = path
                    .split('/')
                    .skip(1)
                    .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                    .collect();
                let methods: Vec<String> = METHODS
                    .iter()
                    .filter(|m| item.get(**m).is_some())
                    .map(|m| m.to_ascii_uppercase())
                    .collect();
                routes.push((segments, methods.join(", ")));
            }
        }
        Self { routes }
    }

    /// The `Allow` value of a request path, when a documented path matches it.
    pub(crate) fn allow(&self, path: &str) -> Option<&str> {
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        self.routes
            .iter()
            .find(|(pattern, _)| {
                pattern.len() == segments.len()
                    && pattern
                        .iter()
                        .zip(&segments)
                        .all(|(p, s)| p.as_deref().is_none_or(|p| p == *s))
            })
            .map(|(_, allow)| allow.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r##"{"paths": {
        "/v1/records": {"get": {"parameters": [{"name": "kind"}], "responses": {"200": {}}}},
        "/v1/records/{id}": {"get": {"parameters": [{"name": "id"}], "responses": {"400": {"description": "ours"}}}},
        "/v1/auth/login": {"post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/LoginRequest"}}}}, "responses": {"200": {}}}},
        "/v1/export/pdf": {"get": {"parameters": [{"name": "kind", "in": "query", "schema": {"type": "string"}}], "responses": {"200": {}}}},
        "/v1/organizations": {"get": {"responses": {"200": {}}}}
    }, "components": {"schemas": {"LoginRequest": {"type": "object"}, "RecordDto": {"type": "object"}}}}"##;

    #[test]
    fn completes_what_the_layers_answer_and_keeps_what_operations_say() {
        let doc: Value = serde_json::from_str(&complete(SPEC)).unwrap();
        let statuses = |path: &str, method: &str| -> Vec<String> {
            doc["paths"][path][method]["responses"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        assert_eq!(statuses("/v1/records", "get"), ["200", "400"]);
        assert_eq!(
            doc["paths"]["/v1/records/{id}"]["get"]["responses"]["400"]["description"],
            "ours"
        );
        assert_eq!(
            statuses("/v1/auth/login", "post"),
            ["200", "400", "413", "415", "429"]
        );
        assert_eq!(statuses("/v1/organizations", "get"), ["200"]);
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["LoginRequest"]["additionalProperties"], false);
        assert!(schemas["RecordDto"].get("additionalProperties").is_none());
        assert_eq!(
            doc["paths"]["/v1/export/pdf"]["get"]["parameters"][0]["schema"]["$ref"],
            "#/components/schemas/RecordKind"
        );
    }

    #[test]
    fn allow_lists_the_methods_of_the_matching_path() {
        let table = AllowTable::from_spec(SPEC);
        assert_eq!(table.allow("/v1/records/0190-x"), Some("GET"));
        assert_eq!(table.allow("/v1/auth/login"), Some("POST"));
        assert_eq!(table.allow("/v1/records/a/b"), None);
        assert_eq!(table.allow("/v1/nothing"), None);
    }
}
