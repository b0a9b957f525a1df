//! Forwarding headers are believed from trusted proxies only; from anyone else they are
//! the sign of a proxy nobody listed, counted in `http_untrusted_forwarded_total`.

use crate::metrics::Metered;

/// Sends `{ apiVersion }` to `app` with `header`.
async fn forwarded(app: &Metered, header: (&str, &str)) {
    let address = app.address.as_deref().expect("a public listener");
    let response = reqwest::Client::new()
        .post(format!("{address}/graphql"))
        .header(header.0, header.1)
        .json(&serde_json::json!({ "query": "{ apiVersion }" }))
        .send()
        .await
        .expect("Failed to send the request");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn forwarding_headers_from_a_peer_that_is_no_trusted_proxy_are_counted() {
    let app = Metered::serve(&[("APP_HTTP__TRUSTED_PROXIES", "none")]);

    forwarded(&app, ("X-Forwarded-For", "198.51.100.7")).await;
    forwarded(&app, ("Forwarded", "for=198.51.100.7")).await;
    let scrape = app.scrape().await;

    assert_eq!(
        scrape.value("http_untrusted_forwarded_total", &[]),
        Some(2.0)
    );
    app.stop().await;
}

#[tokio::test]
async fn forwarding_headers_from_a_trusted_proxy_are_not_counted() {
    let app = Metered::serve(&[("APP_HTTP__TRUSTED_PROXIES", "127.0.0.1/32")]);

    forwarded(&app, ("X-Forwarded-For", "198.51.100.7")).await;
    let scrape = app.scrape().await;

    assert_eq!(scrape.value("http_untrusted_forwarded_total", &[]), None);
    app.stop().await;
}

#[tokio::test]
async fn production_refuses_to_start_without_a_decision_on_trusted_proxies() {
    let output = crate::shutdown::binary(&["serve"])
        .env("APP_ENVIRONMENT", "production")
        .env("APP_HTTP__PORT", "0")
        .env_remove("APP_HTTP__TRUSTED_PROXIES")
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("Failed to run the binary");

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("http.trusted_proxies"), "{stderr}");
}
