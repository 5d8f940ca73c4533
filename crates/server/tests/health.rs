use behalf_server::{AppState, bind, serve};

#[tokio::test]
async fn health_and_readiness_answer_over_http() {
    let store = behalf_store::testing::sqlite().await;
    let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        AppState {
            store: store.store.clone(),
        },
        async {
            let _ = stopped.await;
        },
    ));

    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["database"],
        "sqlite"
    );

    // A database that is gone makes the instance not ready (a load balancer takes it out).
    store.close().await;
    let ready = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
