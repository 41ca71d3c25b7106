//! The committed spec (`docs/openapi.json`) must match the code: run `cargo xtask openapi`
//! after changing the API.

use salus_server::config::{Config, open_store};

#[tokio::test]
async fn committed_openapi_spec_has_not_drifted() {
    let cfg = Config {
        database_url: "sqlite::memory:".into(),
        ..Config::default()
    };
    let store = open_store(&cfg).await.expect("in-memory store");
    let spec = salus_http::openapi_json(
        salus_server::app::api_state(&store, &cfg, std::sync::Arc::new(salus_domain::SystemClock))
            .unwrap(),
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let committed = std::fs::read_to_string(&path)
        .expect("docs/openapi.json exists; run `cargo xtask openapi`");
    assert!(
        committed.trim_end() == spec.trim_end(),
        "docs/openapi.json is out of date: run `cargo xtask openapi`"
    );
}
