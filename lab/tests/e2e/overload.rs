//! Overload through the whole lab with the real model: ml with one worker and a queue of two is
//! the bottleneck, and every request still gets 200 or 503 with `Retry-After` — back-pressure
//! travels up from ml through the backend and the frontend instead of a queue growing anywhere.
//! Only status codes are asserted (the memory bound is frontend/tests/overload.rs).

use lab::topology::Tier;

use crate::support::spawn_lab_with;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_mls_queue_every_answer_is_200_or_503_with_retry_after() {
    let app = spawn_lab_with(vec![
        (Tier::Ml, "ML_WORKERS", "1"),
        (Tier::Ml, "ML_QUEUE_CAPACITY", "2"),
        // Generous: only the bounds may refuse, never a timeout.
        (Tier::Backend, "ML_TIMEOUT_MS", "20000"),
        (Tier::Frontend, "BACKEND_TIMEOUT_MS", "25000"),
    ])
    .await;
    let requests: Vec<_> = (0..24)
        .map(|_| tokio::spawn(app.analyze().send()))
        .collect();
    let (mut served, mut refused) = (0, 0);
    for request in requests {
        let answer = request.await.expect("joined").expect("answered");
        let status = answer.status().as_u16();
        let retry_after = answer.headers().contains_key("retry-after");
        let body = answer.text().await.unwrap_or_default();
        match status {
            200 => served += 1,
            503 => {
                assert!(retry_after, "a 503 without Retry-After: {body}");
                let body: serde_json::Value = serde_json::from_str(&body).expect("JSON error");
                assert_eq!(body["error"]["code"], "backend_busy", "{body}");
                refused += 1;
            }
            other => panic!("overload answered {other}: {body}"),
        }
    }
    assert!(served >= 1, "nothing was served");
    assert!(
        refused >= 1,
        "ml's queue was never full: the test proves nothing"
    );
    // And once the burst is over, everything is served again.
    assert_eq!(app.analyze_json(false).await.item.label, "espresso");
    app.lab.shutdown().await;
}
