//! The shell driven in-process with a toy protocol: transport, timers, reports, blocked links,
//! garbage datagrams, joins and leaves.

use std::collections::BTreeMap;

use clap::Parser;
use election_core::{Config, Kind, Model, NoOptions, Out, Properties, State, Time, Timing};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::*;
use crate::testing::FakeLogserver;

/// Everyone broadcasts `Alive` every heartbeat and follows the highest id heard within the
/// timeout (itself included).
struct Max {
    timing: Timing,
    me: NodeId,
    heard: BTreeMap<NodeId, Time>,
    leader: Option<NodeId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum MaxMsg {
    Alive,
}

impl Kind for MaxMsg {
    fn kind(&self) -> &'static str {
        "Alive"
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
struct Tick;

impl Kind for Tick {
    fn kind(&self) -> &'static str {
        "Tick"
    }
}

impl Max {
    fn elect(&mut self, cx: &Context<'_>) {
        let now = cx.now;
        let timeout = self.timing.timeout;
        self.heard
            .retain(|id, at| cx.members.contains(*id) && now.saturating_sub(*at) <= timeout);
        self.leader = self.heard.keys().copied().chain([self.me]).max();
    }
}

impl Protocol for Max {
    const NAME: &'static str = "max";
    type Options = NoOptions;
    type Msg = MaxMsg;
    type Timer = Tick;

    fn new(config: &Config<NoOptions>) -> Self {
        Max {
            timing: config.timing,
            me: NodeId(0),
            heard: BTreeMap::new(),
            leader: None,
        }
    }
    fn properties(_: &Config<NoOptions>) -> Properties {
        Properties {
            model: Model::Asynchronous,
            agreement: None,
            unique_leader: None,
            highest_wins: true,
            quorum: false,
            membership: true,
        }
    }
    fn liveness_bound(config: &Config<NoOptions>, _n: usize) -> Time {
        config.timing.timeout * 2
    }
    fn on_start(&mut self, cx: &mut Context<'_>, _: Option<&[u8]>, out: &mut Out<MaxMsg, Tick>) {
        self.me = cx.id;
        self.on_timer(cx, Tick, out);
    }
    fn on_message(
        &mut self,
        cx: &mut Context<'_>,
        from: NodeId,
        _: MaxMsg,
        _: &mut Out<MaxMsg, Tick>,
    ) {
        self.heard.insert(from, cx.now);
        self.elect(cx);
    }
    fn on_timer(&mut self, cx: &mut Context<'_>, _: Tick, out: &mut Out<MaxMsg, Tick>) {
        out.broadcast(MaxMsg::Alive);
        out.set_timer(Tick, self.timing.heartbeat);
        self.elect(cx);
    }
    fn on_membership(&mut self, cx: &mut Context<'_>, _: Membership, _: &mut Out<MaxMsg, Tick>) {
        self.elect(cx);
    }
    fn status(&self) -> Status {
        Status {
            state: State::Normal,
            coordinator: self.leader,
            group: None,
            incarnation: None,
            term: None,
            phase: "Normal",
        }
    }
}

fn free_udp_addr() -> SocketAddr {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), Error>>,
}

fn start(addr: SocketAddr, extra: &[String]) -> Running {
    let mut argv = vec!["node".to_string(), "bully".to_string(), addr.to_string()];
    argv.extend_from_slice(extra);
    let args = NodeArgs::try_parse_from(argv).unwrap();
    let config = Config::new(args.options.timing().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        run::<Max>(&args, config, async move {
            let _ = stopped.await;
        })
        .await
    });
    Running { stop, task }
}

fn follows(server: &FakeLogserver, node: SocketAddr, leader: SocketAddr) -> bool {
    server
        .latest(node)
        .is_some_and(|r| r.coordinator == Some(leader.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_elect_survive_garbage_obey_blocks_join_and_leave() {
    let (server, logserver) = FakeLogserver::start().await;
    let addrs: Vec<SocketAddr> = (0..3).map(|_| free_udp_addr()).collect();
    let dir = std::env::temp_dir().join(format!("election-net-test-{}", addrs[0].port()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("server_config");
    let lines: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    std::fs::write(&config, lines.join("\n")).unwrap();
    let key = dir.join("cluster.key");
    crate::keys::generate(&key).unwrap();
    let flags = vec![
        format!("--config={}", config.display()),
        format!("--logserver={logserver}"),
        "--heartbeat-ms=20".to_string(),
        "--timeout-ms=150".to_string(),
        "--report-ms=30".to_string(),
        format!("--state-dir={}", dir.display()),
        format!("--key-file={}", key.display()),
    ];
    let nodes: Vec<Running> = addrs.iter().map(|a| start(*a, &flags)).collect();
    let all_follow = |leader: SocketAddr, among: Vec<SocketAddr>| {
        move |s: &FakeLogserver| among.iter().all(|n| follows(s, *n, leader))
    };
    server
        .wait_for("n2 leads", all_follow(addrs[2], addrs.clone()))
        .await;
    let started = server.latest(addrs[0]).unwrap();
    assert_eq!(started.pid, std::process::id());
    assert_eq!(started.algorithm, "max");

    // Garbage, an unsigned datagram "from" the leader, one signed with another key, and the
    // leader's own genuine datagram sent again from another port: all dropped and counted, node 0
    // keeps its leader.
    let junk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut forged = Vec::new();
    let header = Header {
        cluster: "election",
        algorithm: "max",
        from: addrs[2],
        to: addrs[0],
    };
    let stamp = Stamp {
        incarnation: u64::MAX,
        sequence: 1,
    };
    let wrong = crate::keys::Key::new(0x1234, &[7; 32]);
    let right = Keyring::load(std::slice::from_ref(&key)).unwrap();
    for i in 0..200u32 {
        junk.send_to(&i.to_le_bytes().repeat(i as usize % 40), addrs[0])
            .unwrap();
        let body = Body::Control(Control::Left);
        wire::encode::<MaxMsg>(&header, stamp, &body, None, &mut forged).unwrap();
        junk.send_to(&forged, addrs[0]).unwrap();
        wire::encode::<MaxMsg>(&header, stamp, &body, Some(&wrong), &mut forged).unwrap();
        junk.send_to(&forged, addrs[0]).unwrap();
        // Signed right, but not from the leader's socket.
        wire::encode::<MaxMsg>(&header, stamp, &body, Some(right.primary()), &mut forged).unwrap();
        junk.send_to(&forged, addrs[0]).unwrap();
        if i % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let mut big = b"ELEC".to_vec();
    big.resize(MAX_DATAGRAM + 100, b'x');
    junk.send_to(&big, addrs[0]).unwrap();
    let counted = |s: &FakeLogserver| {
        s.latest(addrs[0]).is_some_and(|r| {
            ["malformed", "unsigned", "unknown-key", "wrong-source"]
                .iter()
                // A few may be lost on a full socket buffer, as UDP may.
                .all(|k| r.drops.get(*k).copied().unwrap_or(0) >= 150)
        })
    };
    server.wait_for("drops counted by reason", counted).await;
    assert!(!nodes[0].task.is_finished(), "node 0 died of garbage");
    assert!(
        follows(&server, addrs[0], addrs[2]),
        "the forged leaves must not count"
    );

    // Cut n2 off both ways: the others fall back to n1; healing restores n2.
    let link = |from: SocketAddr, to: SocketAddr| BlockedLink {
        from: from.to_string(),
        to: to.to_string(),
    };
    *server.blocked.lock().unwrap() = vec![
        link(addrs[2], addrs[0]),
        link(addrs[0], addrs[2]),
        link(addrs[2], addrs[1]),
        link(addrs[1], addrs[2]),
    ];
    server
        .wait_for(
            "n1 leads the cut-off side",
            all_follow(addrs[1], addrs[..2].to_vec()),
        )
        .await;
    server
        .wait_for("n2 alone", all_follow(addrs[2], vec![addrs[2]]))
        .await;
    server.blocked.lock().unwrap().clear();
    server
        .wait_for("n2 leads again", all_follow(addrs[2], addrs.clone()))
        .await;

    // A joiner gets the highest id, so everyone follows it; its graceful leave reverts at once.
    let joiner = free_udp_addr();
    let mut join_flags = flags.clone();
    join_flags.push(format!("--join={}", addrs[0]));
    join_flags[0] = "--config=/nonexistent".to_string();
    let newcomer = start(joiner, &join_flags);
    let mut everyone = addrs.clone();
    everyone.push(joiner);
    server
        .wait_for("the joiner leads", all_follow(joiner, everyone))
        .await;
    newcomer.stop.send(()).unwrap();
    newcomer.task.await.unwrap().unwrap();
    let left = server.latest(joiner).unwrap();
    assert_eq!(left.event, ReportEvent::Left);
    server
        .wait_for(
            "n2 leads after the leave",
            all_follow(addrs[2], addrs.clone()),
        )
        .await;

    for node in nodes {
        node.stop.send(()).unwrap();
        node.task.await.unwrap().unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn startup_errors_name_the_culprit() {
    let addr = free_udp_addr();
    let run_with = |extra: &[&str]| {
        let mut argv = vec!["node".to_string(), "bully".to_string(), addr.to_string()];
        argv.extend(extra.iter().map(|s| s.to_string()));
        let args = NodeArgs::try_parse_from(argv).unwrap();
        async move {
            let config = Config::new(args.options.timing().unwrap());
            run::<Max>(&args, config, async {})
                .await
                .unwrap_err()
                .to_string()
        }
    };
    let missing = run_with(&["--config=/nonexistent/server_config"]).await;
    assert!(missing.contains("/nonexistent/server_config"), "{missing}");

    let dir = std::env::temp_dir().join(format!("election-net-errors-{}", addr.port()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad_config");
    std::fs::write(&bad, "127.0.0.1:1\nnot-an-address\n").unwrap();
    let err = run_with(&[&format!("--config={}", bad.display())]).await;
    assert!(
        err.contains("bad_config") && err.contains("line 2"),
        "{err}"
    );
    let other = dir.join("other_config");
    std::fs::write(&other, "127.0.0.1:1\n").unwrap();
    let err = run_with(&[&format!("--config={}", other.display())]).await;
    assert!(
        err.contains("is not a line of") && err.contains("--join"),
        "{err}"
    );
    let nobody = free_udp_addr();
    let err = run_with(&[&format!("--join={nobody}"), "--timeout-ms=20"]).await;
    assert!(
        err.starts_with(&format!("--join {nobody}: no welcome")),
        "{err}"
    );
    let err = run_with(&["--logserver=nohost"]).await;
    assert!(err.starts_with("--logserver"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn keyless_nodes_start_only_on_loopback_or_when_insecure() {
    let lo: SocketAddr = "127.0.0.1:9000".parse().unwrap();
    let v6: SocketAddr = "[::1]:9000".parse().unwrap();
    let lan: SocketAddr = "10.0.0.1:9000".parse().unwrap();
    assert!(check_secure(&[lo, v6], false, false).is_ok());
    let err = check_secure(&[lo, lan], false, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("10.0.0.1:9000") && err.contains("--key-file"),
        "{err}"
    );
    assert!(check_secure(&[lo, lan], false, true).is_ok());
    assert!(check_secure(&[lan], true, false).is_ok());
}

#[test]
fn the_incarnation_grows_across_restarts_even_with_a_clock_set_back() {
    let dir = std::env::temp_dir().join(format!("election-net-inc-{}", std::process::id()));
    let path = dir.join("incarnation");
    let first = next_incarnation(&path).unwrap();
    assert!(next_incarnation(&path).unwrap() > first);
    // A stored incarnation far in the future (a clock that was ahead): still grows.
    write_atomically(&path, (u64::MAX / 2).to_string().as_bytes()).unwrap();
    assert_eq!(next_incarnation(&path).unwrap(), u64::MAX / 2 + 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn options_are_checked_against_the_algorithm() {
    let args = |extra: &[&str]| {
        let mut argv = vec!["node", "bully", "127.0.0.1:9000"];
        argv.extend_from_slice(extra);
        NodeArgs::try_parse_from(argv).unwrap()
    };
    let sticky = config_for::<election_core::bully::Bully>(&args(&["-o", "sticky=true"])).unwrap();
    assert!(sticky.options.sticky);
    let err = config_for::<Max>(&args(&["-o", "sticky=true"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("--option") && err.contains("sticky"), "{err}");
}

#[test]
fn persisted_state_survives_in_the_state_dir() {
    let dir = std::env::temp_dir().join(format!("election-net-state-{}", std::process::id()));
    let path = state_file(Some(&dir), "async-bully", "[::1]:9000".parse().unwrap());
    assert_eq!(path.file_name().unwrap(), "async-bully-___1__9000.state");
    write_atomically(&path, b"7").unwrap();
    write_atomically(&path, b"8").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"8");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One-off messages sent while booting (here the boot announcement) must leave the socket: the
/// first sends happen before tokio ever polled it.
#[tokio::test]
async fn boot_messages_are_sent() {
    let me = free_udp_addr();
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let dir = std::env::temp_dir().join(format!("election-net-boot-{}", me.port()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("server_config");
    std::fs::write(&config, format!("{me}\n{peer_addr}\n")).unwrap();
    let node = start(me, &[format!("--config={}", config.display())]);

    let expect = Header {
        cluster: "election",
        algorithm: "max",
        from: peer_addr,
        to: peer_addr,
    };
    let announced = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        // Alive messages repeat; the announcement is sent once, at boot.
        for _ in 0..100 {
            let Ok((len, _)) = peer.recv_from(&mut buf) else {
                return false;
            };
            let Ok(opened) = wire::open(&buf[..len], &expect, None) else {
                continue;
            };
            if let Ok(Body::Control(Control::Hello { id, .. })) = opened.body::<MaxMsg>() {
                return id == NodeId(0);
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(announced, "the boot announcement never arrived");
    node.stop.send(()).unwrap();
    node.task.await.unwrap().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Over TCP: two keyed nodes elect; a connection that sends an unsigned envelope has it counted,
/// and one that announces a frame longer than the limit is counted and closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_nodes_elect_and_count_bad_frames() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (server, logserver) = FakeLogserver::start().await;
    let addrs: Vec<SocketAddr> = (0..2).map(|_| free_udp_addr()).collect();
    let dir = std::env::temp_dir().join(format!("election-net-tcp-{}", addrs[0].port()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("server_config");
    std::fs::write(&config, format!("{}\n{}\n", addrs[0], addrs[1])).unwrap();
    let key = dir.join("cluster.key");
    crate::keys::generate(&key).unwrap();
    let flags = vec![
        format!("--config={}", config.display()),
        format!("--logserver={logserver}"),
        "--heartbeat-ms=20".to_string(),
        "--timeout-ms=150".to_string(),
        "--report-ms=30".to_string(),
        format!("--state-dir={}", dir.display()),
        format!("--key-file={}", key.display()),
        "--transport=tcp".to_string(),
    ];
    let nodes: Vec<Running> = addrs.iter().map(|a| start(*a, &flags)).collect();
    server
        .wait_for("n1 leads over tcp", |s| {
            addrs.iter().all(|n| follows(s, *n, addrs[1]))
        })
        .await;

    let header = Header {
        cluster: "election",
        algorithm: "max",
        from: addrs[1],
        to: addrs[0],
    };
    let stamp = Stamp {
        incarnation: u64::MAX,
        sequence: 1,
    };
    let mut envelope = Vec::new();
    wire::encode::<MaxMsg>(
        &header,
        stamp,
        &Body::Control(Control::Left),
        None,
        &mut envelope,
    )
    .unwrap();
    let mut conn = tokio::net::TcpStream::connect(addrs[0]).await.unwrap();
    let mut frame = (envelope.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&envelope);
    conn.write_all(&frame).await.unwrap();
    conn.write_all(&10_000_000u32.to_be_bytes()).await.unwrap();
    // The node closes the connection after the bad length.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0))), "{closed:?}");
    server
        .wait_for("unsigned and oversized counted", |s| {
            s.latest(addrs[0]).is_some_and(|r| {
                r.drops.get("unsigned") == Some(&1) && r.drops.get("oversized") == Some(&1)
            })
        })
        .await;
    assert!(
        follows(&server, addrs[0], addrs[1]),
        "the forged leave must not count"
    );
    for node in nodes {
        node.stop.send(()).unwrap();
        node.task.await.unwrap().unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
