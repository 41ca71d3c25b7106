//! What every API answer of the end-to-end suite must honour, checked on each one as it
//! passes (from the layer in `logcheck::harvesting`), so the document and the answers agree
//! wherever the suite goes:
//! - an error (4xx, 5xx) is JSON `{"code", "message"}` with a `code` of lowercase words;
//! - a 405 names the methods the path takes in `Allow`;
//! - no field is `null`: the document declares no nullable field, so an absent value is left
//!   out (a record's `detail` included: it is typed, one schema per kind).
//!
//! And every page answer but the static stylesheet and script is `Cache-Control: no-store`.

use serde_json::Value;

fn find_null(v: &Value, at: &str) -> Option<String> {
    match v {
        Value::Null => Some(at.to_owned()),
        Value::Object(map) => map
            .iter()
            .find_map(|(k, v)| find_null(v, &format!("{at}.{k}"))),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_null(v, &format!("{at}[{i}]"))),
        _ => None,
    }
}

/// Panics (failing the test that made the request) when an answer breaks the contract.
pub(crate) fn check(path: &str, resp: &poem::Response, json: Option<&Value>) {
    let status = resp.status();
    if status.as_u16() == 405 {
        assert!(
            resp.headers().contains_key("allow"),
            "405 without Allow for {path}"
        );
    }
    if status.is_client_error() || status.is_server_error() {
        let body = json.unwrap_or_else(|| panic!("{status} for {path} is not JSON"));
        let code = body["code"].as_str().unwrap_or_default();
        assert!(
            !code.is_empty()
                && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                && body["message"].is_string(),
            "{status} for {path} is not an error body: {body}"
        );
    }
    if let Some(at) = json.and_then(|v| find_null(v, "$")) {
        panic!("{path} answered null at {at}: the document declares no nullable field");
    }
}

/// Panics when a page answer may be kept in a cache.
pub(crate) fn check_page(path: &str, resp: &poem::Response) {
    if path.starts_with("/static/") {
        return;
    }
    let cache = resp
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok());
    assert_eq!(cache, Some("no-store"), "{path} may be cached");
}
