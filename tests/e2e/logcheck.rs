//! The whole end-to-end suite runs with the server's log captured, in the format and at the
//! level an operator runs it (plus the Salus crates' debug events), and fails if the log ever
//! carries a secret or health data.
//!
//! What counts as such is harvested from the traffic itself, so no test has to remember to
//! declare it: a layer around every test app reads each request (query parameters, form
//! fields, JSON fields) and each JSON answer, and keeps the values of fields that hold
//! passwords, tokens, codes, email addresses, names, record titles, text, values and
//! searches; every emailed link's token and recipient are kept too ([`remember`]). When a
//! test app is dropped the log is searched for every value kept so far (incrementally: new
//! log text against all values, all log text against new values), and for shapes that must
//! never be logged whatever their value: an email address, a query string, `token=`.

use std::collections::BTreeSet;
use std::sync::{Mutex, Once};

/// What the server has logged in this test process.
static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Harvest {
    seen: BTreeSet<String>,
    /// In the order harvested, so a check can start where the last one stopped.
    values: Vec<String>,
    checked_log: usize,
    checked_values: usize,
}

static HARVEST: Mutex<Harvest> = Mutex::new(Harvest {
    seen: BTreeSet::new(),
    values: Vec::new(),
    checked_log: 0,
    checked_values: 0,
});

/// Fields whose values must never reach the log (requests and answers alike).
const SENSITIVE_FIELDS: &[&str] = &[
    "password",
    "new_password",
    "current_password",
    "token",
    "code",
    "email",
    "new_email",
    "given_name",
    "family_name",
    "birth_date",
    "mrn",
    "q",
    "title",
    "text",
    "value",
    "unit",
    "reason",
    "note",
    "secret",
    "recovery_codes",
    "activation_code",
    "provisioning_uri",
];

/// Values shorter than this are too common to mean anything when found (a "5", a unit "%").
const MIN_LEN: usize = 4;

/// Words that are field values in some answers but also plain words of log lines.
const NOT_SECRET: &[&str] = &["note", "final", "true", "false", "null", "request"];

struct Writer;

impl std::io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber (once per process).
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::new(
            "info,salus_server=debug,salus_http=debug,salus_web=debug,salus_store=debug,salus_domain=debug",
        );
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(|| Writer)
            .try_init();
    });
}

/// Keeps a value that must never be logged.
pub(crate) fn remember(value: &str) {
    let value = value.trim();
    if value.len() < MIN_LEN
        || NOT_SECRET.contains(&value)
        || value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return;
    }
    let mut h = HARVEST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if h.seen.insert(value.to_owned()) {
        h.values.push(value.to_owned());
    }
}

/// Keeps the sensitive fields of a JSON document, at any depth.
pub(crate) fn remember_json(v: &serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if SENSITIVE_FIELDS.contains(&k.as_str()) {
                    remember_all(v);
                } else {
                    remember_json(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(remember_json),
        _ => {}
    }
}

fn remember_all(v: &serde_json::Value) {
    match v {
        serde_json::Value::String(s) => remember(s),
        serde_json::Value::Array(items) => items.iter().for_each(remember_all),
        serde_json::Value::Object(_) => remember_json(v),
        _ => {}
    }
}

/// Keeps the sensitive fields of a query string or form body (`a=1&b=2`).
pub(crate) fn remember_form(encoded: &str) {
    for pair in encoded.split('&') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        if SENSITIVE_FIELDS.contains(&k) || k == "csrf" {
            remember(&percent_decode(v));
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Keeps every emailed token and the recipient of an email.
pub(crate) fn remember_email(mail: &str) {
    for word in mail.split_whitespace() {
        if let Some((_, token)) = word.split_once("token=") {
            remember(token);
        }
    }
    for line in mail.lines() {
        if let Some(to) = line.strip_prefix("To: ") {
            let addr = to.rsplit('<').next().unwrap_or(to).trim_end_matches('>');
            remember(addr);
        }
    }
}

/// Wraps a test app so every request and JSON answer is harvested.
pub(crate) fn harvesting(
    ep: poem::endpoint::BoxEndpoint<'static>,
) -> poem::endpoint::BoxEndpoint<'static> {
    use poem::{EndpointExt, IntoResponse};
    ep.around(|ep, req| async move {
        // As a real server does: the request knows the address it arrived with (the test
        // client leaves it empty), so whatever logs it sees what a server would log.
        let (head, body) = req.into_parts();
        let (mut http, ()) = poem::http::Request::new(()).into_parts();
        http.method = head.method;
        http.uri = head.uri;
        http.version = head.version;
        http.headers = head.headers;
        http.extensions = head.extensions;
        // A test may say which address the request comes from (`x-test-peer`), as a
        // connection would; the header goes no further.
        let peer = http
            .headers
            .remove("x-test-peer")
            .and_then(|v| v.to_str().ok()?.parse::<std::net::SocketAddr>().ok())
            .map_or_else(poem::web::RemoteAddr::default, |a| {
                poem::web::RemoteAddr(poem::Addr::SocketAddr(a))
            });
        let head = poem::RequestParts::from((
            http,
            poem::web::LocalAddr::default(),
            peer,
            poem::http::uri::Scheme::HTTP,
        ));
        let mut req = poem::Request::from_parts(head, body);
        if let Some(q) = req.uri().query() {
            remember_form(q);
        }
        // Bodies the body-limit test sends by their declared size are left alone; the test
        // client sends the others without a length.
        let declared_large = req
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n > 64 * 1024);
        if !declared_large {
            let body = req.take_body().into_vec().await.unwrap_or_default();
            let kind = req.content_type().unwrap_or_default().to_owned();
            if kind.starts_with("application/json") {
                if let Ok(v) = serde_json::from_slice(&body) {
                    remember_json(&v);
                }
            } else if kind.starts_with("application/x-www-form-urlencoded") {
                remember_form(&String::from_utf8_lossy(&body));
            }
            req.set_body(body);
        }
        // Answers of the API (not the OpenAPI document, whose words are no secret).
        let path = req.uri().path().to_owned();
        let operation = path.starts_with("/api/v1/");
        let resp = ep.call(req).await?.into_response();
        let json = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !operation {
            crate::contract::check_page(&path, &resp);
            return Ok(resp);
        }
        if !json {
            crate::contract::check(&path, &resp, None);
            return Ok(resp);
        }
        let (parts, body) = resp.into_parts();
        let bytes = body.into_vec().await.unwrap_or_default();
        let parsed: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
        if let Some(v) = &parsed {
            remember_json(v);
        }
        let resp = poem::Response::from_parts(parts, bytes.into());
        crate::contract::check(&path, &resp, parsed.as_ref());
        Ok(resp)
    })
    .boxed()
}

/// Shapes that are never logged, whatever their value.
fn forbidden_shape(log: &str) -> Option<&'static str> {
    if log.contains("token=") {
        return Some("a token parameter");
    }
    if log.contains("uri=") || log.contains("?q=") || log.contains("?mrn=") {
        return Some("a request URI with its query");
    }
    let bytes = log.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b != b'@' || i == 0 {
            continue;
        }
        let before = bytes[i - 1];
        let after = &log[i + 1..];
        let domain: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
            .collect();
        if (before.is_ascii_alphanumeric() || b"._+-".contains(&before))
            && domain.contains('.')
            && !domain.ends_with('.')
        {
            return Some("an email address");
        }
    }
    None
}

/// Fails when the log holds a harvested value or a forbidden shape (see the module docs).
pub(crate) fn assert_log_clean() {
    let log = LOG
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let log = String::from_utf8_lossy(&log);
    let mut h = HARVEST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (old_log, old_values) = (h.checked_log.min(log.len()), h.checked_values);
    // Lines are whole: check up to the last newline only.
    let end = log.rfind('\n').map_or(0, |i| i + 1).max(old_log);
    let fresh = &log[old_log..end];
    let found = h.values[..old_values]
        .iter()
        .find(|v| carries(fresh, v))
        .or_else(|| {
            h.values[old_values..]
                .iter()
                .find(|v| carries(&log[..end], v))
        })
        .cloned();
    let shape = forbidden_shape(fresh);
    h.checked_log = end;
    h.checked_values = h.values.len();
    drop(h);
    if let Some(value) = found {
        let line = log
            .lines()
            .find(|l| l.contains(value.as_str()))
            .unwrap_or_default();
        panic!("the server log carries a value from a request or answer ({value:?}): {line}");
    }
    if let Some(what) = shape {
        panic!("the server log carries {what}:\n{fresh}");
    }
}

/// Whether `log` carries `value`: anywhere, for a long value; as a whole word, for a short
/// one (a four-letter value inside a route such as `/api/v1/slots` is not that value).
fn carries(log: &str, value: &str) -> bool {
    if value.len() >= 8 {
        return log.contains(value);
    }
    let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    log.match_indices(value).any(|(i, _)| {
        !word(log[..i].chars().next_back()) && !word(log[i + value.len()..].chars().next())
    })
}

/// The captured log so far (for tests that look at it directly).
pub(crate) fn captured() -> String {
    String::from_utf8_lossy(
        &LOG.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
    .into_owned()
}

#[test]
fn the_checker_finds_what_it_must() {
    assert_eq!(
        forbidden_shape("GET uri=/records/problems?q=HIV+infection"),
        Some("a request URI with its query")
    );
    assert_eq!(
        forbidden_shape("route=/reset?token=abc"),
        Some("a token parameter")
    );
    assert_eq!(
        forbidden_shape("mail to ann@example.org failed"),
        Some("an email address")
    );
    assert_eq!(
        forbidden_shape("route=/api/v1/records/{id} status=200 request_id=0190-ab"),
        None
    );
    assert_eq!(percent_decode("HIV+infection%2C%20x"), "HIV infection, x");
}
