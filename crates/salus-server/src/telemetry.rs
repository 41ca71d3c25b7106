//! Structured logs with tracing.

use crate::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG` overrides `log_level` when set.
pub fn init(cfg: &Config) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match cfg.log_format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// The request log: one line per request with method, route, status, time taken and request
/// id (the client's when usable, else a new one, echoed in `x-request-id` on every answer),
/// inside a span that every event of the request inherits.
///
/// **Invariant:** the query string is never logged (it carried emailed tokens and searches for
/// health terms), and neither is any path segment that is not a fixed word of a route: ids
/// become `{id}`, anything else `{..}`. So a line says which route ran, never what it was
/// asked about.
pub fn request_log<E: poem::Endpoint + 'static>(ep: E) -> impl poem::Endpoint {
    use poem::{EndpointExt, IntoResponse};
    use tracing::Instrument;
    ep.around(|ep, mut req| async move {
        let started = std::time::Instant::now();
        let id = salus_http::ensure_request_id(&mut req);
        let request_id = id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-");
        let method = req.method().clone();
        let route = route_pattern(req.uri().path());
        let span = tracing::info_span!("request", %method, %route, request_id);
        async move {
            let mut resp = match ep.call(req).await {
                Ok(r) => r.into_response(),
                Err(e) => e.into_response(),
            };
            tracing::info!(
                status = resp.status().as_u16(),
                duration_ms = started.elapsed().as_secs_f64() * 1000.0,
                "request"
            );
            if let Some(id) = id {
                resp.headers_mut().insert(salus_http::REQUEST_ID, id);
            }
            Ok(resp)
        }
        .instrument(span)
        .await
    })
}

/// The path with every segment that is not a route's fixed word replaced: a UUID by `{id}`,
/// anything else that is not a short lowercase word by `{..}`.
pub fn route_pattern(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for segment in path.split('/').skip(1) {
        out.push('/');
        let word = segment.len() <= 32
            && segment
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        if uuid::Uuid::try_parse(segment).is_ok() {
            out.push_str("{id}");
        } else if word {
            out.push_str(segment);
        } else {
            out.push_str("{..}");
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::route_pattern;

    #[test]
    fn route_patterns_keep_fixed_words_only() {
        assert_eq!(route_pattern("/"), "/");
        assert_eq!(route_pattern("/records/problems"), "/records/problems");
        assert_eq!(
            route_pattern("/api/v1/records/0190f2d4-5b4c-7d1e-9a2b-3c4d5e6f7a8b"),
            "/api/v1/records/{id}"
        );
        assert_eq!(route_pattern("/records/HIV%20infection"), "/records/{..}");
        assert_eq!(route_pattern("/static/salus.css"), "/static/salus.css");
        assert_eq!(route_pattern(&format!("/x/{}", "a".repeat(33))), "/x/{..}");
    }
}
