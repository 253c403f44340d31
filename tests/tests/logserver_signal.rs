//! `logserver::serve` stops cleanly on Ctrl-C (SIGINT) and has written what it accepted. Alone in
//! its own test binary, because the signal goes to the whole process.

mod logserver_common;

use std::time::{Duration, Instant};

use logserver::ServeArgs;
use logserver_common::{Http, column, report, start, temp_dir};
use nix::sys::signal::{Signal, raise};

#[tokio::test]
async fn serve_shuts_down_cleanly_on_ctrl_c() {
    let dir = temp_dir("signal");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let serving = tokio::spawn(logserver::serve(ServeArgs::new(port, &dir)));
    let http = Http::to(&format!("http://127.0.0.1:{port}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "serve did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    http.post_reports(&[report("127.0.0.1:9000", "127.0.0.1:9000", 1)])
        .await;
    // serve starts waiting for Ctrl-C right after it starts listening; leave it time to do so.
    tokio::time::sleep(Duration::from_millis(500)).await;
    raise(Signal::SIGINT).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("serve returns after Ctrl-C")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "the port is closed"
    );

    let server = start(&dir).await;
    let nodes = Http::new(&server).get_json("/api/nodes").await;
    assert_eq!(column(&nodes, "addr"), ["127.0.0.1:9000"]);
    server.shutdown().await.unwrap();
}
