//! One real node: a [`Protocol`] driven by a UDP socket, tokio timers, membership traffic and
//! signals, reporting to the logserver.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use election_core::report::{BlockedLink, NodeReport, ReportEvent};
use election_core::{
    Algorithm, Command, ConfigOf, Context, Input, InputOf, Members, Membership, Node, NodeId,
    OutOf, Protocol, Status, validated,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::reporter::{Reporter, reports_uri};
use crate::timers::Timers;
use crate::wire::{self, Body, Control, DropReason, Header, MAX_DATAGRAM};
use crate::{Error, NodeArgs};

/// Join requests sent before `--join` gives up (one per `--timeout-ms`).
const JOIN_TRIES: u32 = 10;
/// Time the reporter gets to deliver the last reports when the node leaves.
const FINAL_REPORT_GRACE: Duration = Duration::from_secs(1);

/// Runs one node of the built-in algorithm `args.algorithm` names until SIGINT or SIGTERM, then
/// leaves gracefully: every member is told at once, a `left` report goes to the logserver, and
/// the function returns `Ok`.
pub async fn run_node(args: NodeArgs) -> Result<(), Error> {
    let algorithm: Algorithm =
        args.algorithm
            .parse()
            .map_err(|e: election_core::UnknownAlgorithm| Error::Flag {
                flag: "ALGORITHM",
                problem: e.to_string(),
            })?;
    election_core::with_protocol!(algorithm, P => run_node_with::<P>(args).await)
}

/// Runs one node of protocol `P` — a built-in one or your own — over UDP until SIGINT or SIGTERM,
/// exactly as `election node` does: `args` gives the address, `server_config` or `--join`, the
/// timing and `-o NAME=VALUE` options (parsed into `P::Options`), the logserver to report to
/// (status page, blocked links) and the state directory. `args.algorithm` must be `P::NAME`.
pub async fn run_node_with<P: Protocol>(args: NodeArgs) -> Result<(), Error> {
    if args.algorithm != P::NAME {
        return Err(Error::Flag {
            flag: "ALGORITHM",
            problem: format!("this node runs {}, not {}", P::NAME, args.algorithm),
        });
    }
    let stop = crate::stop_signal()?;
    let config = config_for::<P>(&args)?;
    run::<P>(&args, config, stop).await
}

/// The algorithm's configuration from the timing flags and `-o` options.
fn config_for<P: Protocol>(args: &NodeArgs) -> Result<ConfigOf<P>, Error> {
    let timing = args.options.timing()?;
    ConfigOf::<P>::new(timing)
        .with_options(P::NAME, &args.options.algorithm_options)
        .and_then(validated::<P>)
        .map_err(|e| Error::Flag {
            flag: if e.field == "options" {
                "--option"
            } else {
                "--heartbeat-ms/--timeout-ms"
            },
            problem: e.to_string(),
        })
}

/// Runs protocol `P` with `config` until `stop` completes.
pub(crate) async fn run<P: Protocol>(
    args: &NodeArgs,
    config: ConfigOf<P>,
    stop: impl Future<Output = ()>,
) -> Result<(), Error> {
    let clock = Clock(Instant::now());
    let options = &args.options;
    let me = args.addr;
    let protocol = P::new(&config);
    let (socket, sender) = bind(me)?;
    let uri = options.logserver.as_deref().map(reports_uri).transpose()?;
    let state_file = state_file(options.state_dir.as_deref(), P::NAME, me);
    let persisted = match std::fs::read(&state_file) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(Error::State {
                path: state_file,
                source,
            });
        }
    };
    let peers = match args.join {
        Some(member) => {
            let header = Header {
                cluster: &options.cluster_id,
                algorithm: P::NAME,
                from: me,
                to: member,
            };
            let wait = Duration::from_millis(options.timeout_ms);
            join::<P>(&socket, &header, wait).await?
        }
        None => {
            let config = options.cluster()?;
            if config.id_of(me).is_none() {
                return Err(Error::NotInConfig {
                    addr: me,
                    path: options.config.clone(),
                });
            }
            Peers::new(
                config
                    .addrs()
                    .iter()
                    .enumerate()
                    .map(|(i, a)| (NodeId(i as u32), *a)),
            )
        }
    };
    let id = peers.id_of(me).ok_or(Error::NotInConfig {
        addr: me,
        path: options.config.clone(),
    })?;
    let (blocked_tx, mut blocked_rx) = watch::channel(Vec::new());
    let reporter = uri.map(|uri| {
        Reporter::spawn(
            uri,
            options.report_token.clone(),
            options.report_every(),
            move || clock.now_us(),
            blocked_tx,
        )
    });
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()) << 32
        ^ u64::from(me.port());
    let mut shell = Shell::<P> {
        node: Node::new(protocol),
        out: OutOf::<P>::new(),
        id,
        me,
        peers,
        socket,
        sender,
        timers: Timers::new(),
        rng: ChaCha8Rng::seed_from_u64(seed),
        clock,
        cluster: options.cluster_id.clone(),
        blocked_to: HashSet::new(),
        blocked_from: HashSet::new(),
        drops: Drops::default(),
        reporter,
        report_ms: options.report_ms,
        state_file,
        buf: Vec::with_capacity(MAX_DATAGRAM),
    };
    tracing::info!(%me, %id, algorithm = P::NAME, members = shell.peers.addrs.len(), "node starting");
    shell.report(ReportEvent::Started, Status::down());
    shell.input(Input::Start { persisted });
    shell.broadcast(&Body::Control(Control::Joined { id, addr: me }));

    let mut datagram = vec![0u8; MAX_DATAGRAM + 1];
    tokio::pin!(stop);
    loop {
        let next_timer = shell.timers.next_deadline();
        tokio::select! {
            () = &mut stop => break,
            received = shell.socket.recv_from(&mut datagram) => match received {
                Ok((len, _)) if len > MAX_DATAGRAM => shell.dropped(DropReason::Malformed, None),
                Ok((len, _)) => shell.on_datagram(&datagram[..len]),
                // ICMP errors from peers that are gone surface here; they are not fatal.
                Err(e) => tracing::debug!(error = %e, "UDP receive failed"),
            },
            () = sleep_until(next_timer) => {
                while let Some(timer) = shell.timers.pop_due(Instant::now()) {
                    shell.input(Input::Timer(timer));
                }
            }
            Ok(()) = blocked_rx.changed() => {
                let links = blocked_rx.borrow_and_update().clone();
                shell.set_blocked(&links);
            }
        }
    }
    shell.leave().await;
    Ok(())
}

/// Binds the node's socket: a tokio handle to receive, and a non-blocking std handle of the same
/// socket to send from the synchronous command loop. (tokio's `try_send_to` reports `WouldBlock`
/// until the socket was first polled for writing, which would drop the boot messages.)
fn bind(me: SocketAddr) -> Result<(UdpSocket, std::net::UdpSocket), Error> {
    let bind_error = |source| Error::Bind { addr: me, source };
    let std_socket = std::net::UdpSocket::bind(me).map_err(bind_error)?;
    std_socket.set_nonblocking(true).map_err(bind_error)?;
    let sender = std_socket.try_clone().map_err(bind_error)?;
    let socket = UdpSocket::from_std(std_socket).map_err(bind_error)?;
    Ok((socket, sender))
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Asks `header.to` to let this node in until a welcome arrives; returns the member table.
async fn join<P: Protocol>(
    socket: &UdpSocket,
    header: &Header<'_>,
    wait: Duration,
) -> Result<Peers, Error> {
    let mut buf = Vec::new();
    let mut datagram = vec![0u8; MAX_DATAGRAM + 1];
    let expect = Header {
        to: header.from,
        ..header.clone()
    };
    for _ in 0..JOIN_TRIES {
        if wire::encode::<P::Msg>(header, &Body::Control(Control::Join), &mut buf).is_ok() {
            if let Err(e) = socket.send_to(&buf, header.to).await {
                tracing::debug!(error = %e, "join request not sent");
            }
        }
        let deadline = Instant::now() + wait;
        while let Ok(received) =
            tokio::time::timeout_at(deadline, socket.recv_from(&mut datagram)).await
        {
            let Ok((len, _)) = received else { continue };
            if let Ok((_, Body::Control(Control::Welcome { members }))) =
                wire::decode::<P::Msg>(&datagram[..len.min(MAX_DATAGRAM)], &expect)
            {
                tracing::info!(member = %header.to, members = members.len(), "joined");
                return Ok(Peers::new(members));
            }
        }
    }
    Err(Error::JoinTimeout {
        member: header.to,
        tries: JOIN_TRIES,
    })
}

/// The node's clock: monotonic microseconds since the node started.
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now_us(&self) -> u64 {
        self.0.elapsed().as_micros() as u64
    }
}

/// The membership table with every member's address. Ids are never reused: a joiner gets one more
/// than the highest id this node has ever seen.
#[derive(Debug)]
struct Peers {
    members: Members,
    addrs: BTreeMap<NodeId, SocketAddr>,
    highest_seen: Option<NodeId>,
}

impl Peers {
    fn new(list: impl IntoIterator<Item = (NodeId, SocketAddr)>) -> Self {
        let mut peers = Peers {
            members: Members::default(),
            addrs: BTreeMap::new(),
            highest_seen: None,
        };
        for (id, addr) in list {
            peers.insert(id, addr);
        }
        peers
    }

    /// Adds a member; false if the id or the address is already taken.
    fn insert(&mut self, id: NodeId, addr: SocketAddr) -> bool {
        if self.addrs.contains_key(&id) || self.id_of(addr).is_some() {
            return false;
        }
        self.addrs.insert(id, addr);
        self.members.insert(id);
        self.highest_seen = self.highest_seen.max(Some(id));
        true
    }

    fn remove(&mut self, id: NodeId) -> bool {
        self.members.remove(id);
        self.addrs.remove(&id).is_some()
    }

    fn id_of(&self, addr: SocketAddr) -> Option<NodeId> {
        self.addrs
            .iter()
            .find(|(_, a)| **a == addr)
            .map(|(id, _)| *id)
    }

    fn next_id(&self) -> NodeId {
        NodeId(self.highest_seen.map_or(0, |id| id.0 + 1))
    }
}

/// Dropped-datagram counters, with a debug log at most once a second.
#[derive(Default)]
struct Drops {
    counts: BTreeMap<DropReason, u64>,
    last_log: Option<Instant>,
    unlogged: u64,
}

struct Shell<P: Protocol> {
    node: Node<P>,
    out: OutOf<P>,
    id: NodeId,
    me: SocketAddr,
    peers: Peers,
    socket: UdpSocket,
    /// The same socket for sending without waiting (see [`bind`]).
    sender: std::net::UdpSocket,
    timers: Timers<P::Timer>,
    rng: ChaCha8Rng,
    clock: Clock,
    cluster: String,
    /// Peers this node must not send to.
    blocked_to: HashSet<SocketAddr>,
    /// Peers whose datagrams this node drops.
    blocked_from: HashSet<SocketAddr>,
    drops: Drops,
    reporter: Option<Reporter>,
    report_ms: u64,
    state_file: PathBuf,
    buf: Vec<u8>,
}

impl<P: Protocol> Shell<P> {
    /// Feeds one input to the protocol and carries out its commands in order.
    fn input(&mut self, input: InputOf<P>) {
        let mut cx = Context {
            id: self.id,
            now: self.clock.now_us(),
            members: &self.peers.members,
            rng: &mut self.rng,
        };
        let changed = self.node.handle(&mut cx, input, &mut self.out);
        let mut out = std::mem::take(&mut self.out);
        for command in out.drain() {
            self.execute(command);
        }
        self.out = out;
        if let Some(status) = changed {
            tracing::info!(state = %status.state, phase = status.phase,
                coordinator = ?status.coordinator.and_then(|c| self.name(c)),
                group = ?status.group.map(|g| g.to_string()), "status");
            self.report(ReportEvent::Status, status);
        }
    }

    fn execute(&mut self, command: Command<P::Msg, P::Timer>) {
        match command {
            Command::Send { to, msg } => match self.peers.addrs.get(&to) {
                Some(&addr) => self.send(addr, &Body::Protocol(msg)),
                None => tracing::debug!(%to, "send to a node that is not a member"),
            },
            Command::Broadcast { msg } => self.broadcast(&Body::Protocol(msg)),
            Command::SetTimer { timer, after } => {
                self.timers
                    .set(timer, Instant::now() + Duration::from_micros(after));
            }
            Command::CancelTimer(timer) => self.timers.cancel(&timer),
            Command::Persist(bytes) => {
                if let Err(e) = write_atomically(&self.state_file, &bytes) {
                    tracing::error!(path = %self.state_file.display(), error = %e,
                        "cannot persist state; a restart may reuse old numbers");
                }
            }
        }
    }

    fn send(&mut self, to: SocketAddr, body: &Body<P::Msg>) {
        if self.blocked_to.contains(&to) {
            return;
        }
        let header = Header {
            cluster: &self.cluster,
            algorithm: P::NAME,
            from: self.me,
            to,
        };
        if let Err(e) = wire::encode(&header, body, &mut self.buf) {
            tracing::warn!(%to, error = %e, "message not sent");
            return;
        }
        // A full socket buffer loses the datagram, as the network might; the protocols cope.
        if let Err(e) = self.sender.send_to(&self.buf, to) {
            tracing::debug!(%to, error = %e, "UDP send failed");
        }
    }

    fn broadcast(&mut self, body: &Body<P::Msg>) {
        let others: Vec<SocketAddr> = self
            .peers
            .addrs
            .values()
            .copied()
            .filter(|a| *a != self.me)
            .collect();
        for to in others {
            self.send(to, body);
        }
    }

    fn on_datagram(&mut self, datagram: &[u8]) {
        let expect = Header {
            cluster: &self.cluster,
            algorithm: P::NAME,
            from: self.me,
            to: self.me,
        };
        let (from, body) = match wire::decode::<P::Msg>(datagram, &expect) {
            Ok(decoded) => decoded,
            Err(reason) => return self.dropped(reason, None),
        };
        if self.blocked_from.contains(&from) {
            return self.dropped(DropReason::Blocked, Some(from));
        }
        let sender = self.peers.id_of(from);
        match (body, sender) {
            (Body::Protocol(msg), Some(id)) => self.input(Input::Message { from: id, msg }),
            (Body::Control(Control::Join), _) => self.welcome(from),
            // A member announces a joiner, or a node announces itself as it boots.
            (Body::Control(Control::Joined { id, addr }), _)
                if sender.is_some() || from == addr =>
            {
                if self.peers.insert(id, addr) {
                    tracing::info!(%addr, %id, "member joined");
                    self.input(Input::Membership(Membership::Joined(id)));
                }
            }
            (Body::Control(Control::Left), Some(id)) => {
                if self.peers.remove(id) {
                    tracing::info!(addr = %from, %id, "member left");
                    self.input(Input::Membership(Membership::Left(id)));
                }
            }
            (Body::Control(Control::Welcome { .. }), Some(_)) => {} // a late duplicate
            _ => self.dropped(DropReason::UnknownSender, Some(from)),
        }
    }

    /// Admits `joiner`: it gets the next id (or its old one), the members learn it, and it gets
    /// the member table.
    fn welcome(&mut self, joiner: SocketAddr) {
        let known = self.peers.id_of(joiner);
        let id = known.unwrap_or_else(|| self.peers.next_id());
        if known.is_none() {
            self.peers.insert(id, joiner);
            tracing::info!(addr = %joiner, %id, "admitting joiner");
        }
        let members = self.peers.addrs.iter().map(|(i, a)| (*i, *a)).collect();
        self.send(joiner, &Body::Control(Control::Welcome { members }));
        if known.is_none() {
            let announce = Body::Control(Control::Joined { id, addr: joiner });
            let others: Vec<SocketAddr> = self
                .peers
                .addrs
                .values()
                .copied()
                .filter(|a| *a != self.me && *a != joiner)
                .collect();
            for to in others {
                self.send(to, &announce);
            }
            self.input(Input::Membership(Membership::Joined(id)));
        }
    }

    fn dropped(&mut self, reason: DropReason, from: Option<SocketAddr>) {
        *self.drops.counts.entry(reason).or_default() += 1;
        let now = Instant::now();
        if self
            .drops
            .last_log
            .is_some_and(|at| now.duration_since(at) < Duration::from_secs(1))
        {
            self.drops.unlogged += 1;
            return;
        }
        tracing::debug!(%reason, ?from, not_logged_before = self.drops.unlogged, "datagram dropped");
        self.drops.last_log = Some(now);
        self.drops.unlogged = 0;
    }

    fn set_blocked(&mut self, links: &[BlockedLink]) {
        self.blocked_to.clear();
        self.blocked_from.clear();
        for link in links {
            let (Ok(from), Ok(to)) = (link.from.parse(), link.to.parse()) else {
                continue;
            };
            if from == self.me {
                self.blocked_to.insert(to);
            }
            if to == self.me {
                self.blocked_from.insert(from);
            }
        }
        tracing::info!(to = ?self.blocked_to, from = ?self.blocked_from, "blocked links changed");
    }

    /// A member's address; `None` for a node that is no longer a member (a coordinator that just
    /// left), whose address this node has forgotten.
    fn name(&self, id: NodeId) -> Option<String> {
        self.peers.addrs.get(&id).map(|a| a.to_string())
    }

    fn report(&mut self, event: ReportEvent, status: Status) {
        if self.reporter.is_none() {
            return;
        }
        let report = NodeReport {
            addr: self.me.to_string(),
            algorithm: P::NAME.to_string(),
            event,
            state: status.state,
            coordinator: status.coordinator.and_then(|c| self.name(c)),
            group: status.group.map(|g| {
                let origin = self.name(g.origin).unwrap_or_else(|| g.origin.to_string());
                format!("{origin}#{}", g.counter)
            }),
            incarnation: status.incarnation,
            term: status.term,
            phase: status.phase.to_string(),
            node_time_us: self.clock.now_us(),
            heartbeat_ms: self.report_ms,
            pid: std::process::id(),
            drops: self
                .drops
                .counts
                .iter()
                .map(|(reason, n)| (reason.to_string(), *n))
                .collect(),
        };
        if let Some(reporter) = &mut self.reporter {
            reporter.send(report);
        }
    }

    /// Tells every member this node is leaving, reports it, and waits briefly for the report.
    async fn leave(mut self) {
        self.broadcast(&Body::Control(Control::Left));
        self.report(ReportEvent::Left, Status::down());
        tracing::info!(dropped = ?self.drops.counts, "node leaving");
        if let Some(reporter) = self.reporter.take() {
            reporter.finish(FINAL_REPORT_GRACE).await;
        }
    }
}

/// `<dir>/<algorithm>-<ip>_<port>.state`; the default dir is `election-state` in the temp dir.
fn state_file(dir: Option<&Path>, algorithm: &str, addr: SocketAddr) -> PathBuf {
    let dir = dir.map_or_else(
        || std::env::temp_dir().join("election-state"),
        Path::to_path_buf,
    );
    let name: String = format!("{algorithm}-{addr}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{name}.state"))
}

/// Writes via a temporary file and a rename, so a crash mid-write leaves the old state intact.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
