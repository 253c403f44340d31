//! One real node: a [`Protocol`] driven by a transport (UDP or TCP), tokio timers, the
//! membership layer and signals, reporting to the logserver.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use election_core::membership::{Effect, Joining, View, ViewConfig};
use election_core::report::{BlockedLink, Direction, MessageReport, NodeReport, ReportEvent};
use election_core::{
    Algorithm, Command, ConfigOf, Context, Input, InputOf, Kind, Membership, Node, NodeId, OutOf,
    Protocol, Status, validated,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Serialize, de::DeserializeOwned};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::keys::Keyring;
use crate::replay::ReplayGuard;
use crate::reporter::{Reporter, reports_uri};
use crate::timers::Timers;
use crate::transport::{Incoming, Source, Transport};
use crate::wire::{self, Body, Control, DropReason, Header, MAX_DATAGRAM, Stamp};
use crate::{Error, NodeArgs};

/// Join requests sent before `--join` gives up (one per `--timeout-ms`, each to the next member
/// to ask).
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

/// Runs one node of protocol `P` — a built-in one or your own — until SIGINT or SIGTERM,
/// exactly as `election node` does: `args` gives the address, `server_config` or `--join`, the
/// timing and `-o NAME=VALUE` options (parsed into `P::Options`), the keys, the transport, the
/// logserver to report to (status page, blocked links) and the state directory.
/// `args.algorithm` must be `P::NAME`.
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
    let uri = options.logserver.as_deref().map(reports_uri).transpose()?;
    let keys = options.keyring()?;
    let lines = match args.join {
        Some(_) => None,
        None => Some(options.cluster()?),
    };
    let cluster_addrs: Vec<SocketAddr> = match &lines {
        Some(config) => config.addrs().to_vec(),
        None => vec![me, args.join.unwrap_or(me)],
    };
    check_secure(&cluster_addrs, keys.is_some(), options.insecure)?;
    let dir = options.state_dir.as_deref();
    let assigned_file = state_file(dir, "assigned", me);
    let members_file = state_file(dir, "members", me);
    // A joined node's id from its last welcome, claimed when it joins again (membership doc).
    let claim_file = state_file(dir, "claim", me);
    let incarnation_file = state_file(dir, "incarnation", me);
    let state_file = state_file(dir, P::NAME, me);
    let persisted = read_state(&state_file)?;
    let read_id = |path: &Path| -> Result<Option<NodeId>, Error> {
        Ok(read_state(path)?
            .and_then(|b| String::from_utf8(b).ok()?.trim().parse().ok())
            .map(NodeId))
    };
    let assigned = read_id(&assigned_file)?;
    let incarnation = next_incarnation(&incarnation_file)?;
    let view_config = ViewConfig {
        max_members: options.max_members,
        authenticated: keys.is_some(),
    };
    let transport = Transport::bind(
        options.transport,
        me,
        options.max_members.saturating_add(16),
    )?;
    let mut link = Link {
        cluster: options.cluster_id.clone(),
        algorithm: P::NAME,
        me,
        keys,
        stamp: Stamp {
            incarnation,
            sequence: 0,
        },
        guard: ReplayGuard::new(options.max_members.saturating_mul(2).saturating_add(16)),
        buf: Vec::with_capacity(MAX_DATAGRAM),
        transport,
        drops: Drops::default(),
    };
    let view = match (args.join, &lines) {
        (Some(member), _) => {
            let wait = Duration::from_millis(options.timeout_ms);
            let claim = read_id(&claim_file)?;
            let view = join::<P>(&mut link, member, claim, view_config, wait, clock).await?;
            if let Err(e) = write_atomically(&claim_file, view.id().0.to_string().as_bytes()) {
                tracing::warn!(path = %claim_file.display(), error = %e,
                    "cannot persist the id; a re-join through another admitter may get a second one");
            }
            view
        }
        (None, Some(config)) => {
            if config.id_of(me).is_none() {
                return Err(Error::NotInConfig {
                    addr: me,
                    path: options.config.clone(),
                });
            }
            let mut view = View::from_config(config.addrs(), &me, assigned, view_config)?;
            view.restore(&read_members(&members_file)?);
            view
        }
        (None, None) => unreachable!("a node without --join reads its config"),
    };
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
        view,
        effects: Vec::new(),
        link,
        timers: Timers::new(),
        rng: ChaCha8Rng::seed_from_u64(seed),
        clock,
        blocked_to: HashSet::new(),
        blocked_from: HashSet::new(),
        reporter,
        report_ms: options.report_ms,
        report_messages: options.report_messages,
        reported_drops: 0,
        state_file,
        failed_persist: None,
        assigned_file,
        members_file,
        key_files: options.key_files.clone(),
    };
    tracing::info!(%me, id = %shell.view.id(), algorithm = P::NAME,
        members = shell.view.members().len(), incarnation,
        keys = ?shell.link.keys.as_ref().map(Keyring::ids), "node starting");
    shell.report(ReportEvent::Started, Status::down());
    // Greet the others before the protocol's first message: a peer drops a message from an
    // address it does not know, and a restarted node (one that left, or was dropped from the
    // tables) would take its first hop's receiver for dead — the ring's restarted
    // second-highest node then skipped the live leader and led beside it (`election chaos`).
    if args.join.is_some() {
        // The welcome told only the admitter's table to this node; the rest of the cluster
        // learns of it through the layer now, and their answers fill in joiners that other
        // admitters let in meanwhile (as the simulator drives it).
        shell.view.announce(&mut shell.effects);
    } else {
        shell.view.hello(&mut shell.effects);
    }
    shell.carry_effects();
    shell.input(Input::Start { persisted });

    let mut datagram = vec![0u8; MAX_DATAGRAM + 1];
    let mut announce = tokio::time::interval(Duration::from_millis(options.announce_ms));
    announce.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut drops_tick = tokio::time::interval(options.report_every());
    drops_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut hangup = signal(SignalKind::hangup()).map_err(|source| Error::Io {
        what: "cannot install signal handler",
        source,
    })?;
    tokio::pin!(stop);
    loop {
        let next_timer = shell.timers.next_deadline();
        tokio::select! {
            () = &mut stop => break,
            received = shell.link.transport.recv(&mut datagram) => match received {
                Ok(Incoming::Envelope { len, source }) => {
                    shell.on_datagram(&datagram[..len], source);
                }
                Ok(Incoming::Dropped { reason, source }) => shell.dropped(reason, source.addr()),
                // ICMP errors from peers that are gone surface here; they are not fatal.
                Err(e) => tracing::debug!(error = %e, "receive failed"),
            },
            () = sleep_until(next_timer) => {
                while let Some(timer) = shell.timers.pop_due(Instant::now()) {
                    shell.input(Input::Timer(timer));
                }
            }
            _ = announce.tick() => {
                shell.view.on_tick(&mut shell.rng, &mut shell.effects);
                shell.carry_effects();
            }
            _ = drops_tick.tick() => shell.report_new_drops(),
            Some(()) = hangup.recv() => shell.reload_keys(),
            Ok(()) = blocked_rx.changed() => {
                let links = blocked_rx.borrow_and_update().clone();
                shell.set_blocked(&links);
            }
        }
        if let Some(error) = shell.failed_persist.take() {
            // A crash, as far as the others can tell: no leave, nothing more sent.
            return Err(error);
        }
    }
    shell.leave().await;
    Ok(())
}

/// Refuses a keyless node on a cluster that is not all on loopback, unless `--insecure`; warns
/// whenever a node runs without a key.
fn check_secure(addrs: &[SocketAddr], keyed: bool, insecure: bool) -> Result<(), Error> {
    if keyed {
        return Ok(());
    }
    match addrs.iter().find(|a| !a.ip().is_loopback()) {
        Some(addr) if !insecure => Err(Error::Insecure { addr: *addr }),
        Some(_) => {
            tracing::warn!(
                "--insecure: no cluster key; anyone on the network can forge, replay and join"
            );
            Ok(())
        }
        None => {
            tracing::warn!(
                "no --key-file: datagrams are not authenticated (tolerated on loopback only)"
            );
            Ok(())
        }
    }
}

/// The member table persisted at `path` (`ID ADDR` per line), empty if there is none. A line
/// that does not read is skipped with a warning naming it: the table only speeds up what
/// announcements would restore.
fn read_members(path: &Path) -> Result<Vec<(NodeId, SocketAddr)>, Error> {
    let Some(bytes) = read_state(path)? else {
        return Ok(Vec::new());
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let parsed = line
            .split_once(' ')
            .and_then(|(id, addr)| Some((NodeId(id.parse().ok()?), addr.parse().ok()?)));
        match parsed {
            Some(entry) => entries.push(entry),
            None => tracing::warn!(path = %path.display(), line = i + 1, text = line,
                "skipping a member-table line that is not `ID ADDR`"),
        }
    }
    Ok(entries)
}

fn read_state(path: &Path) -> Result<Option<Vec<u8>>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::State {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// This run's incarnation: above the last one stored in `path` and at least the wall clock in
/// microseconds, so it grows across restarts even when the state dir is lost (and across a
/// clock stepped back while it is kept). Stored before the node sends anything.
fn next_incarnation(path: &Path) -> Result<u64, Error> {
    let last: u64 = read_state(path)?
        .and_then(|b| String::from_utf8(b).ok()?.trim().parse().ok())
        .unwrap_or(0);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let incarnation = now.max(last.saturating_add(1));
    write_atomically(path, incarnation.to_string().as_bytes()).map_err(|source| Error::State {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(incarnation)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Asks `member` (and the admitters it names) to let this node in, claiming the id of its last
/// welcome, until a welcome arrives.
async fn join<P: Protocol>(
    link: &mut Link,
    member: SocketAddr,
    claim: Option<NodeId>,
    config: ViewConfig,
    wait: Duration,
    clock: Clock,
) -> Result<View<SocketAddr>, Error> {
    let failed = |source| Error::Join { member, source };
    let mut joining = Joining::new(link.me, member, JOIN_TRIES, config).claiming(claim);
    let mut datagram = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        let (to, request) = joining.request().map_err(failed)?;
        link.send::<P::Msg>(to, &Body::Control(request));
        let deadline = Instant::now() + wait;
        while let Ok(received) =
            tokio::time::timeout_at(deadline, link.transport.recv(&mut datagram)).await
        {
            let Ok(Incoming::Envelope { len, source }) = received else {
                continue;
            };
            let keep = |a: &SocketAddr| joining.asked(a);
            let (from, reply) =
                match link.accept::<P::Msg>(&datagram[..len], source, clock.now_us(), keep) {
                    Ok((from, _, Body::Control(reply))) => (from, reply),
                    Ok(_) => continue,
                    Err(reason) => {
                        link.drops.count(reason.name(), Some(source.addr()));
                        continue;
                    }
                };
            // A refusal that names admitters: ask the next one at once.
            let redirect = matches!(reply, Control::Refused { .. });
            match joining.on_reply(&from, reply) {
                Some(Ok(view)) => {
                    tracing::info!(%from, id = %view.id(), members = view.members().len(), "joined");
                    return Ok(view);
                }
                Some(Err(e)) => return Err(failed(e)),
                None if redirect => break,
                None => {}
            }
        }
    }
}

/// The node's clock: monotonic microseconds since the node started.
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now_us(&self) -> u64 {
        self.0.elapsed().as_micros() as u64
    }
}

/// Dropped-datagram counters by reason name, with a debug log at most once a second.
#[derive(Default)]
struct Drops {
    counts: BTreeMap<&'static str, u64>,
    total: u64,
    last_log: Option<Instant>,
    unlogged: u64,
}

impl Drops {
    fn count(&mut self, reason: &'static str, from: Option<SocketAddr>) {
        *self.counts.entry(reason).or_default() += 1;
        self.total += 1;
        let now = Instant::now();
        if self
            .last_log
            .is_some_and(|at| now.duration_since(at) < Duration::from_secs(1))
        {
            self.unlogged += 1;
            return;
        }
        tracing::debug!(%reason, ?from, not_logged_before = self.unlogged, "datagram dropped");
        self.last_log = Some(now);
        self.unlogged = 0;
    }
}

/// The envelope on both directions: signs and numbers what is sent, verifies, checks and
/// de-duplicates what arrives.
struct Link {
    cluster: String,
    algorithm: &'static str,
    me: SocketAddr,
    keys: Option<Keyring>,
    /// The stamp of the last datagram sent.
    stamp: Stamp,
    guard: ReplayGuard,
    buf: Vec<u8>,
    transport: Transport,
    drops: Drops,
}

impl Link {
    fn send<M: Serialize>(&mut self, to: SocketAddr, body: &Body<M>) {
        let header = Header {
            cluster: &self.cluster,
            algorithm: self.algorithm,
            from: self.me,
            to,
        };
        self.stamp.sequence += 1;
        let key = self.keys.as_ref().map(Keyring::primary);
        if let Err(e) = wire::encode(&header, self.stamp, body, key, &mut self.buf) {
            tracing::warn!(%to, error = %e, "message not sent");
            return;
        }
        // A full socket buffer or queue loses the envelope, as the network might; the
        // protocols cope.
        self.transport.send(to, &self.buf);
    }

    /// Verifies a datagram that arrived from `source`, checks that it came from the sender its
    /// header names and was not seen before (`keep`: senders whose replay windows must not be
    /// evicted), and parses it.
    fn accept<M: DeserializeOwned>(
        &mut self,
        datagram: &[u8],
        source: Source,
        now: u64,
        keep: impl Fn(&SocketAddr) -> bool,
    ) -> Result<(SocketAddr, Stamp, Body<M>), DropReason> {
        let expect = Header {
            cluster: &self.cluster,
            algorithm: self.algorithm,
            from: self.me,
            to: self.me,
        };
        let opened = wire::open(datagram, &expect, self.keys.as_ref())?;
        if !source.matches(opened.from) {
            return Err(DropReason::WrongSource);
        }
        self.guard
            .check(opened.from, opened.stamp, now, keep)
            .map_err(|_| DropReason::Replay)?;
        Ok((opened.from, opened.stamp, opened.body()?))
    }
}

struct Shell<P: Protocol> {
    node: Node<P>,
    out: OutOf<P>,
    view: View<SocketAddr>,
    effects: Vec<Effect<SocketAddr>>,
    link: Link,
    timers: Timers<P::Timer>,
    rng: ChaCha8Rng,
    clock: Clock,
    /// Peers this node must not send to.
    blocked_to: HashSet<SocketAddr>,
    /// Peers whose datagrams this node drops.
    blocked_from: HashSet<SocketAddr>,
    reporter: Option<Reporter>,
    /// `--report-messages`: protocol sends and receives go to the reporter too.
    report_messages: bool,
    report_ms: u64,
    /// The drop total last reported (and logged).
    reported_drops: u64,
    state_file: PathBuf,
    /// A `Persist` that could not be written: the node stops rather than act on state it could
    /// not save (a Raft vote sent without its term on disk could be cast twice after a crash).
    failed_persist: Option<Error>,
    assigned_file: PathBuf,
    /// Where the member table goes after every change (see `View::restore`).
    members_file: PathBuf,
    key_files: Vec<PathBuf>,
}

impl<P: Protocol> Shell<P> {
    /// Feeds one input to the protocol and carries out its commands in order.
    fn input(&mut self, input: InputOf<P>) {
        let mut cx = Context {
            id: self.view.id(),
            now: self.clock.now_us(),
            members: self.view.members(),
            rng: &mut self.rng,
        };
        let changed = self.node.handle(&mut cx, input, &mut self.out);
        let mut out = std::mem::take(&mut self.out);
        for command in out.drain() {
            if self.failed_persist.is_some() {
                break;
            }
            self.execute(command);
        }
        self.out = out;
        if let Some(status) = changed.filter(|_| self.failed_persist.is_none()) {
            tracing::info!(state = %status.state, phase = status.phase,
                coordinator = ?status.coordinator.and_then(|c| self.name(c)),
                group = ?status.group.map(|g| g.to_string()), "status");
            self.report(ReportEvent::Status, status);
        }
    }

    fn execute(&mut self, command: Command<P::Msg, P::Timer>) {
        match command {
            Command::Send { to, msg } => match self.view.addr_of(to) {
                Some(&addr) => self.send(addr, &Body::Protocol(msg)),
                None => tracing::debug!(%to, "send to a node that is not a member"),
            },
            Command::Broadcast { msg } => {
                let others: Vec<SocketAddr> = self.view.others().copied().collect();
                let body = Body::Protocol(msg);
                for to in others {
                    self.send(to, &body);
                }
            }
            Command::SetTimer { timer, after } => {
                self.timers
                    .set(timer, Instant::now() + Duration::from_micros(after));
            }
            Command::CancelTimer(timer) => self.timers.cancel(&timer),
            Command::Persist(bytes) => {
                if let Err(source) = write_atomically(&self.state_file, &bytes) {
                    tracing::error!(path = %self.state_file.display(), error = %source,
                        "cannot persist state; stopping before acting on it");
                    self.failed_persist = Some(Error::State {
                        path: self.state_file.clone(),
                        source,
                    });
                }
            }
        }
    }

    /// Carries out the membership layer's effects, in order.
    fn carry_effects(&mut self) {
        let mut effects = std::mem::take(&mut self.effects);
        if effects.iter().any(|e| matches!(e, Effect::Change(_))) {
            let table: String = self
                .view
                .entries()
                .iter()
                .map(|(id, addr)| format!("{} {addr}\n", id.0))
                .collect();
            // Only into a state dir that still exists: one removed under a stopping node (the
            // demo's scratch dir, as the others hear it leave) must not be created again.
            let dir_exists = self.members_file.parent().is_none_or(Path::exists);
            let written = if dir_exists {
                write_atomically(&self.members_file, table.as_bytes())
            } else {
                Ok(())
            };
            if let Err(e) = written {
                tracing::warn!(path = %self.members_file.display(), error = %e,
                    "cannot persist the member table; a restart knows only the config lines");
            }
        }
        for effect in effects.drain(..) {
            match effect {
                Effect::Send { to, msg } => self.send(to, &Body::Control(msg)),
                Effect::Change(change) => {
                    match change {
                        Membership::Joined(id) => {
                            tracing::info!(%id, addr = ?self.view.addr_of(id), "member joined")
                        }
                        Membership::Left(id) => tracing::info!(%id, "member left"),
                    }
                    if let Membership::Left(_) = change {
                        let view = &self.view;
                        self.link.transport.retain(|a| view.id_of(a).is_some());
                    }
                    self.input(Input::Membership(change));
                }
                Effect::PersistAssigned(id) => {
                    // The id must be durable before the welcome that hands it out leaves.
                    if let Err(e) =
                        write_atomically(&self.assigned_file, id.0.to_string().as_bytes())
                    {
                        tracing::error!(path = %self.assigned_file.display(), error = %e,
                            "cannot persist the assigned id; a restart may assign it again");
                    }
                }
                Effect::Rejected { from, why } => self.link.drops.count(why.name(), Some(from)),
            }
        }
        if self.effects.is_empty() {
            self.effects = effects;
        }
    }

    fn send(&mut self, to: SocketAddr, body: &Body<P::Msg>) {
        if self.blocked_to.contains(&to) {
            return;
        }
        self.link.send(to, body);
        if let Body::Protocol(msg) = body {
            self.record(Direction::Send, msg.kind(), to, self.link.stamp);
        }
    }

    /// With `--report-messages`, hands one protocol message to the reporter; `stamp` is the
    /// sender's, which names the message at both ends.
    fn record(&mut self, dir: Direction, kind: &str, peer: SocketAddr, stamp: Stamp) {
        if !self.report_messages {
            return;
        }
        let node_time_us = self.clock.now_us();
        if let Some(reporter) = self.reporter.as_mut() {
            reporter.message(MessageReport {
                dir,
                kind: kind.to_string(),
                peer: peer.to_string(),
                incarnation: stamp.incarnation,
                number: stamp.sequence,
                node_time_us,
            });
        }
    }

    fn on_datagram(&mut self, datagram: &[u8], source: Source) {
        let view = &self.view;
        let accepted = self
            .link
            .accept::<P::Msg>(datagram, source, self.clock.now_us(), |a| {
                view.id_of(a).is_some()
            });
        let (from, stamp, body) = match accepted {
            Ok(accepted) => accepted,
            Err(reason) => return self.dropped(reason, source.addr()),
        };
        if self.blocked_from.contains(&from) {
            return self.dropped(DropReason::Blocked, from);
        }
        match body {
            Body::Protocol(msg) => match self.view.id_of(&from) {
                Some(id) => {
                    self.record(Direction::Receive, msg.kind(), from, stamp);
                    self.input(Input::Message { from: id, msg });
                }
                None => self.dropped(DropReason::UnknownSender, from),
            },
            Body::Control(control) => {
                self.view.on_control(&from, control, &mut self.effects);
                self.carry_effects();
            }
        }
    }

    fn dropped(&mut self, reason: DropReason, from: SocketAddr) {
        self.link.drops.count(reason.name(), Some(from));
    }

    /// Re-reads the key files (SIGHUP); a file that does not load leaves the old keyring.
    fn reload_keys(&mut self) {
        if self.key_files.is_empty() {
            return tracing::warn!("SIGHUP: no --key-file to re-read");
        }
        match Keyring::load(&self.key_files) {
            Ok(ring) => {
                tracing::info!(keys = ?ring.ids(), "SIGHUP: keyring reloaded");
                self.link.keys = Some(ring);
            }
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: keyring not reloaded, the old one stays")
            }
        }
    }

    fn set_blocked(&mut self, links: &[BlockedLink]) {
        self.blocked_to.clear();
        self.blocked_from.clear();
        let me = self.link.me;
        for link in links {
            let (Ok(from), Ok(to)) = (link.from.parse(), link.to.parse()) else {
                continue;
            };
            if from == me {
                self.blocked_to.insert(to);
            }
            if to == me {
                self.blocked_from.insert(from);
            }
        }
        tracing::info!(to = ?self.blocked_to, from = ?self.blocked_from, "blocked links changed");
    }

    /// A member's address; `None` for a node that is no longer a member (a coordinator that just
    /// left), whose address this node has forgotten.
    fn name(&self, id: NodeId) -> Option<String> {
        self.view.addr_of(id).map(|a| a.to_string())
    }

    /// Reports the drop counters when they changed since the last report (the reporter's own
    /// heartbeats repeat the last report).
    fn report_new_drops(&mut self) {
        if self.link.drops.total != self.reported_drops {
            let summary: Vec<String> = (self.link.drops.counts.iter())
                .map(|(reason, n)| format!("{reason}:{n}"))
                .collect();
            tracing::info!(drops = %summary.join(","), "dropped datagrams");
            let status = *self.node.status();
            self.reported_drops = self.link.drops.total;
            self.report(ReportEvent::Heartbeat, status);
        }
    }

    fn report(&mut self, event: ReportEvent, status: Status) {
        if self.reporter.is_none() {
            return;
        }
        let report = NodeReport {
            addr: self.link.me.to_string(),
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
                .link
                .drops
                .counts
                .iter()
                .map(|(reason, n)| (reason.to_string(), *n))
                .collect(),
            // The reporter attaches the message records and their drop count.
            messages: Vec::new(),
            messages_dropped: 0,
        };
        if let Some(reporter) = &mut self.reporter {
            reporter.send(report);
        }
    }

    /// Tells every member this node is leaving, reports it, and waits briefly for the report.
    async fn leave(mut self) {
        self.view.leave(&mut self.effects);
        self.carry_effects();
        self.report(ReportEvent::Left, Status::down());
        tracing::info!(dropped = ?self.link.drops.counts, "node leaving");
        let reporter = self.reporter.take();
        tokio::join!(self.link.transport.flush(FINAL_REPORT_GRACE), async {
            if let Some(reporter) = reporter {
                reporter.finish(FINAL_REPORT_GRACE).await;
            }
        });
    }
}

/// `<dir>/<name>-<ip>_<port>.state` (`name`: the algorithm for its persisted state,
/// `incarnation`, `assigned`); the default dir is `election-state` in the temp dir.
fn state_file(dir: Option<&Path>, name: &str, addr: SocketAddr) -> PathBuf {
    let dir = dir.map_or_else(
        || std::env::temp_dir().join("election-state"),
        Path::to_path_buf,
    );
    let name: String = format!("{name}-{addr}")
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

/// Writes via a temporary file, an fsync and a rename (then an fsync of the directory), so a
/// crash or power loss leaves either the old state or the new one, and a state the protocol was
/// told is persisted really is on disk.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = dir {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
