mod common;

#[tokio::test]
async fn health_and_readiness_answer_over_http() {
    let server = common::TestServer::start().await;
    let addr = server.addr;

    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        health.headers().contains_key("x-request-id"),
        "every answer carries a request id"
    );
    let ready = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["database"],
        "sqlite"
    );
    let metrics = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("behalf_http_requests_total{"), "{metrics}");
    assert!(metrics.contains("route=\"/readyz\""), "{metrics}");
    assert!(
        !metrics.contains("\u{1b}["),
        "no terminal colours in metrics"
    );

    // A database that is gone makes the instance not ready (a load balancer takes it out).
    server.app.store().close().await;
    let ready = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    server.stop().await;
}
