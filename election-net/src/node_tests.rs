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
    let flags = vec![
        format!("--config={}", config.display()),
        format!("--logserver={logserver}"),
        "--heartbeat-ms=20".to_string(),
        "--timeout-ms=150".to_string(),
        "--report-ms=30".to_string(),
        format!("--state-dir={}", dir.display()),
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

    // Garbage, a foreign cluster and an unknown sender: all dropped, node 0 keeps its leader.
    let junk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let stranger = junk.local_addr().unwrap();
    let mut foreign = Vec::new();
    let header = |cluster, from| Header {
        cluster,
        algorithm: "max",
        from,
        to: addrs[0],
    };
    for i in 0..200u32 {
        junk.send_to(&i.to_le_bytes().repeat(i as usize % 40), addrs[0])
            .unwrap();
        wire::encode(
            &header("other", addrs[2]),
            &Body::Protocol(MaxMsg::Alive),
            &mut foreign,
        )
        .unwrap();
        junk.send_to(&foreign, addrs[0]).unwrap();
        wire::encode(
            &header("election", stranger),
            &Body::Protocol(MaxMsg::Alive),
            &mut foreign,
        )
        .unwrap();
        junk.send_to(&foreign, addrs[0]).unwrap();
    }
    let mut big = b"ELEC".to_vec();
    big.resize(MAX_DATAGRAM + 100, b'x');
    junk.send_to(&big, addrs[0]).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!nodes[0].task.is_finished(), "node 0 died of garbage");
    assert!(
        follows(&server, addrs[0], addrs[2]),
        "the stranger's Alive must not count"
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
            if let Ok((_, Body::Control(Control::Joined { id, .. }))) =
                wire::decode::<MaxMsg>(&buf[..len], &expect)
            {
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
