//! Raft's leader election: terms, randomized election timeouts, RequestVote with one vote per
//! term, empty AppendEntries heartbeats, and the dissertation's PreVote and CheckQuorum.
//!
//! Sources: D. Ongaro and J. Ousterhout, "In Search of an Understandable Consensus Algorithm"
//! (USENIX ATC 2014), §5.1 (terms) and §5.2 (leader election); D. Ongaro, "Consensus: Bridging
//! Theory and Practice" (PhD dissertation, Stanford, 2014), §4.2.3 (disruptive servers), §6.2
//! (a leader steps down when it loses its majority) and §9.6 (PreVote).
//!
//! This is leader election only: there is no log, no client request and no commit index.
//!
//! # The paper's variables and procedures, as found here
//! | Raft                                        | here                                          |
//! |---------------------------------------------|-----------------------------------------------|
//! | `currentTerm` (persistent)                  | `term`, persisted with `voted_for`            |
//! | `votedFor` (persistent)                     | `voted_for`                                   |
//! | follower / candidate / leader               | [`Role`]: `Follower`, `Candidate`, `Leader`   |
//! | pre-candidate (§9.6)                        | `Role::PreCandidate`                          |
//! | votes received by a candidate               | the `votes` of `Role::Candidate`              |
//! | election timeout, random in a fixed range   | [`Timer::Election`], uniform in `[E, 2E]` |
//! | leader's idle-period heartbeats             | [`Timer::Heartbeat`], every `heartbeat`   |
//! | RequestVote(term, candidateId, lastLog…)    | [`Msg::RequestVote`] (sender = candidate) |
//! | RequestVote results (term, voteGranted)     | [`Msg::RequestVoteReply`]                 |
//! | AppendEntries(term, leaderId, no entries)   | [`Msg::AppendEntries`] (sender = leader)  |
//! | AppendEntries results (term, success)       | [`Msg::AppendEntriesReply`]               |
//! | PreVote request / response (§9.6)           | [`Msg::PreVote`], [`Msg::PreVoteReply`] |
//! | leader steps down without a majority (§6.2) | [`Timer::CheckQuorum`], `Leader { acked }` |
//! | "heard from a current leader within the minimum election timeout" (§4.2.3, §9.6) | `in_lease` |
//!
//! `E` is [`RaftConfig::election_timeout`]; the procedures are the paper's rules for servers:
//! * **All servers** (§5.1): a message carrying a term above `currentTerm` makes the receiver
//!   adopt it, forget its vote and become a follower (`adopt_term`); a request carrying a lower
//!   term is rejected with the receiver's term, which makes a stale candidate or leader step
//!   down; replies carrying a lower term are ignored.
//! * **Followers**: answer RequestVote and AppendEntries; if the election timeout passes without
//!   a heartbeat from the current leader or granting a vote, campaign (`on_election_timeout`).
//! * **Candidates**: increment `currentTerm`, vote for self, reset the election timer, send
//!   RequestVote to all others (`start_election`); with votes from a majority become leader; on a
//!   heartbeat of the current term become follower; on timeout start a new election.
//! * **Leaders**: send a heartbeat at once and then every `heartbeat` (`become_leader`).
//! * **RequestVote receivers**: grant if the request's term is current and `votedFor` is empty or
//!   the candidate (`on_request_vote`); the vote is persisted before the reply is sent.
//!
//! # Options
//! [`RaftOptions::pre_vote`] (§9.6): a server whose election timer fires first becomes a
//! pre-candidate and asks the others whether they *would* vote for it in `currentTerm + 1`,
//! without changing any term. A server grants a pre-vote if that term is above its own and it
//! has not heard from a leader within `E`. Only with a majority of pre-votes does the
//! pre-candidate increment its term and hold a real election. A server cut off in a minority
//! therefore never raises its term, and when it rejoins it neither wins a pre-vote (everyone hears
//! the leader) nor disrupts the leader with a higher term.
//!
//! [`RaftOptions::check_quorum`] (§6.2, §4.2.3): a leader that has not heard heartbeat replies
//! from a majority (itself included) within `E` steps down; and a server that heard from its
//! leader within `E` (or is the leader) ignores RequestVote: it neither adopts the term nor
//! votes. The two halves belong together: the lease alone could keep followers that still hear
//! a leader (say, across a one-way cut) from ever electing another, which the step-down rules out.
//!
//! Both default to on ([`RaftOptions::default`]): PreVote is what stops a rejoining
//! server from deposing a healthy leader (without a log, the log check that also holds back a
//! stale server in full Raft is vacuous here, so PreVote's "no leader heard" condition does all
//! the work), and CheckQuorum is what makes a leader cut off in a minority stop claiming to lead,
//! which the status page and the checkers read. Each can be turned off to show what it buys
//! (`tests/raft.rs`).
//!
//! # Status
//! | role                                  | [`State`]        | coordinator | phase            |
//! |---------------------------------------|------------------|-------------|------------------|
//! | follower that knows its leader        | `Normal`         | the leader  | `"Follower"`     |
//! | follower without a leader             | `Election`       | none        | `"Follower"`     |
//! | pre-candidate / candidate             | `Election`       | none        | `"PreCandidate"` / `"Candidate"` |
//! | leader, before a majority answered    | `Reorganization` | itself      | `"Leader"`       |
//! | leader, after a majority answered     | `Normal`         | itself      | `"Leader"`       |
//!
//! [`Status::term`] is `currentTerm`; there is no group. A leader counts as `Normal` only once a
//! majority (itself included) has answered one of its heartbeats in its term: the votes show
//! that a majority chose it, but a voter may have moved on to a later term since; the answers
//! show that a majority follows it now. Until then it is in Garcia-Molina's `Reorganization`
//! ("a coordinator is chosen and the group is being set up"); the wait is one round trip.
//!
//! # Durable state
//! `currentTerm` and `votedFor` are persisted together ([`Out::persist`], 14 bytes: a version,
//! flags, the term, the vote) whenever either changes, and always *before* the first message
//! sent after the change: every send goes through one method that flushes the state first, and
//! drivers execute commands in order. A vote that reached a candidate is thus on disk, and a node
//! that crashes and recovers never votes twice in a term.
//!
//! **Unreadable state.** If the persisted bytes cannot be decoded, the node does not know in
//! which terms it voted, and no local rule can recover that: the term in which it last voted may
//! be known only to that election's candidate, which may be down, and lagging nodes may campaign
//! again in any lower term. So it boots as a **non-voter**: it follows leaders (and is `Normal`
//! under one), answers heartbeats, but never grants a vote or pre-vote and never campaigns; the
//! non-voter flag is persisted at once, so a later restart keeps it. It still counts in the
//! majority, so it costs availability like a crashed member. To vote again it must leave and
//! rejoin under a fresh id, as a new member. *Absent* state
//! (`None`) is a first boot: this cannot be told apart from a wiped disk, and a wiped node can
//! vote twice in a term — Raft's stable-storage assumption, which drivers must keep.
//!
//! # Where this departs from the papers, and why
//! * **No log.** RequestVote carries no `lastLogIndex`/`lastLogTerm`, and its "candidate's log is
//!   at least as up-to-date" check is vacuous. That check serves Leader Completeness (a new
//!   leader holds every committed entry); Election Safety — at most one leader per term — rests
//!   only on one vote per term and intersecting majorities, which are kept. AppendEntries is an
//!   empty heartbeat and always succeeds in a current term.
//! * **Timeouts from the common [`Timing`].** Raft's election timeout base is
//!   `E = 2·heartbeat + timeout` ([`RaftConfig::election_timeout`]): a follower gives up on its
//!   leader when two heartbeats are missing and the house's answer timeout has passed too, the
//!   rule of the asynchronous Bully's failure detector. Each wait is drawn uniformly from
//!   `[E, 2E]` with the driver's RNG. `E > heartbeat` always, and [`Raft::max_delay`] is
//!   `E / 50`, so a round trip is at most 4 % of `E`: Raft's `broadcastTime ≪ electionTimeout`.
//! * **Lease on the local clock.** "Heard from a leader within `E`" compares [`Context::now`]
//!   with the time of the last heartbeat from the current leader.
//! * **PreVote's "no leader heard" rule is always part of PreVote** (as in the dissertation),
//!   not only with CheckQuorum; CheckQuorum adds the same lease to RequestVote and the step-down.
//! * **A leader is `Reorganization` until a majority answered** (see Status).
//! * **A pre-candidate that is refused stays one** until its next timeout (or a heartbeat, or a
//!   higher term), instead of counting refusals; the retry is the same.
//! * **Membership** is the driver's table, not a log entry. Majority is `members.len() / 2 + 1`
//!   of the current table, recomputed at every count; votes, pre-votes and heartbeat answers of a
//!   member that left are dropped (which may complete a majority at once); messages from
//!   non-members are ignored. A joiner boots at term 0 and learns the term from the first
//!   heartbeat or refusal. When the leader leaves, its followers forget it and draw their next
//!   timeout from `[0, E]` instead of `[E, 2E]`: a prompt election, still randomized. Real Raft
//!   changes membership through the log — joint consensus, or one server at a time (dissertation
//!   §4.1–4.3) — so that every majority of the old configuration intersects every majority of
//!   the new one while the change is under way. Here a node counts against whatever table it
//!   sees: after two changes (two joins, or a join and a leave, while the old leader's majority
//!   is cut off), or once views differ (real nodes learn a change at different times), a leader
//!   elected by a majority of the old table and a candidate with a majority of the new one may
//!   share no voter, and **Election Safety is not guaranteed across membership changes**;
//!   between them it is. The simulator's random plans, which join and leave during partitions,
//!   show it.
//!
//! # Cost
//! An uncontested election costs `n - 1` RequestVote and `n - 1` replies, preceded with PreVote
//! by `n - 1` PreVote and `n - 1` replies, and followed by the leader's first heartbeat round
//! (`n - 1` AppendEntries and replies): `6(n - 1)` messages with PreVote, `4(n - 1)` without.
//! Every split round adds another `2(n - 1)` (or `4(n - 1)`) per candidate. In normal operation
//! the leader's heartbeat costs `2(n - 1)` messages per period. State is O(n) at a leader or
//! candidate (who answered), O(1) at a follower.

use std::collections::BTreeSet;

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::protocol::{
    Bound, Config, Context, Explorable, Kind, Membership, MessageBounds, Model, NodeId, Options,
    Properties, Protocol, Reclock, Scope, Time, Timing,
};
use crate::status::{State, Status};

/// A Raft term.
pub type Term = u64;

/// Raft's options, both on by default (see the module docs for why).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(deny_unknown_fields, default)]
pub struct RaftOptions {
    /// Run the dissertation's PreVote phase before every election (§9.6).
    pub pre_vote: bool,
    /// A leader without heartbeat answers from a majority within `E` steps down, and a server
    /// that heard its leader within `E` ignores RequestVote (§6.2, §4.2.3).
    pub check_quorum: bool,
}

impl Default for RaftOptions {
    fn default() -> Self {
        RaftOptions {
            pre_vote: true,
            check_quorum: true,
        }
    }
}

impl Options for RaftOptions {
    const HELP: &'static str = "pre_vote=true|false  ask before raising the term (default true); \
         check_quorum=true|false  a leader without a majority steps down, followers of a live \
         leader ignore candidates (default true)";

    /// An election timeout whose tolerated delay is not zero.
    fn validate(&self, timing: &Timing) -> Result<(), (&'static str, String)> {
        let config = Config {
            timing: *timing,
            options: *self,
        };
        if Raft::max_delay(&config) == 0 {
            return Err((
                "timeout",
                format!(
                    "gives an election timeout (2 * heartbeat + timeout) of {}us, below {}us \
                     (the tolerated delay, 1/{} of it, would be 0)",
                    config.election_timeout(),
                    DELAY_FRACTION,
                    DELAY_FRACTION
                ),
            ));
        }
        Ok(())
    }
}

/// Raft's configuration: the common timing (`heartbeat`: the leader's heartbeat period;
/// `timeout`: the house's answer timeout, part of the election timeout
/// [`RaftConfig::election_timeout`]) and [`RaftOptions`].
pub type RaftConfig = Config<RaftOptions>;

/// `E / DELAY_FRACTION` is the one-way delay the timing is built for.
const DELAY_FRACTION: Time = 50;

/// The probability, at most, that the cluster is not settled by Raft's
/// [`liveness_bound`](crate::Protocol::liveness_bound).
pub const LIVENESS_FAILURE: f64 = 1e-6;

/// Timers on a clock running up to 20 % fast (the house's drift allowance, see
/// [`Timing::max_delay`]) last `0.8` of their nominal length, which raises their density.
const FAST_CLOCK: f64 = 0.8;

impl RaftConfig {
    /// The election timeout base `E = 2·heartbeat + timeout`; each wait is uniform in `[E, 2E]`.
    pub fn election_timeout(&self) -> Time {
        self.timing
            .heartbeat
            .saturating_mul(2)
            .saturating_add(self.timing.timeout)
    }

    /// How long a campaign takes to reach every node, at most: one delay for RequestVote, three
    /// with PreVote (PreVote out, its reply back, RequestVote out).
    pub fn campaign_time(&self) -> Time {
        let hops = if self.options.pre_vote { 3 } else { 1 };
        hops * Raft::max_delay(self)
    }

    /// Upper bound on the probability that one election round, begun when every live node
    /// shares the highest term and has freshly drawn its timeout, fails to elect a leader. See
    /// [`Raft::liveness_bound`].
    pub fn round_failure(&self, n: usize) -> f64 {
        self.ln_round_failure(n).exp()
    }

    /// `ln` of [`round_failure`](Self::round_failure), computed so that a failure probability a
    /// hair below 1 (large `n`) is not rounded to 1.
    fn ln_round_failure(&self, n: usize) -> f64 {
        if n <= 1 {
            return f64::NEG_INFINITY;
        }
        let n = n as f64;
        let e = self.election_timeout() as f64 * FAST_CLOCK;
        let w = self.campaign_time() as f64;
        let union = (n * w / e).ln();
        // 1 - (1 - 3w/E)^n, as ln(1 - exp(n·ln(1 - 3w/E))).
        let spacing = (-(n * (-3.0 * w / e).ln_1p()).exp()).ln_1p();
        union.min(spacing)
    }

    /// Rounds needed so that all of them fail with probability at most [`LIVENESS_FAILURE`]
    /// (saturating at `u64::MAX`).
    pub fn rounds(&self, n: usize) -> u64 {
        let ln_f = self.ln_round_failure(n);
        if ln_f == f64::NEG_INFINITY {
            return 1;
        }
        if ln_f >= 0.0 {
            // No bound below certainty: a round may always fail.
            return u64::MAX;
        }
        // A float-to-int `as` saturates.
        ((LIVENESS_FAILURE.ln() / ln_f).ceil() as u64).max(1)
    }
}

/// Raft's messages (leader election only). Every message carries the sender's term, except
/// that a PreVote asks about the term the sender *would* campaign in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum Msg {
    /// A pre-candidate asks: would you vote for me in `term` (its own term + 1)?
    PreVote {
        /// The term the sender would campaign in.
        term: Term,
    },
    /// The answer to PreVote: `term` is the asked term if granted, the receiver's own if not.
    PreVoteReply {
        /// The asked term (granted) or the answerer's term (refused).
        term: Term,
        /// Whether the answerer would vote.
        granted: bool,
    },
    /// A candidate asks for a vote in its term.
    RequestVote {
        /// The candidate's term.
        term: Term,
    },
    /// The answer to RequestVote, with the answerer's term.
    RequestVoteReply {
        /// The answerer's term.
        term: Term,
        /// Whether it voted for the candidate.
        granted: bool,
    },
    /// The leader's heartbeat: an AppendEntries with no entries.
    AppendEntries {
        /// The leader's term.
        term: Term,
    },
    /// The answer to AppendEntries, with the answerer's term.
    AppendEntriesReply {
        /// The answerer's term.
        term: Term,
        /// Whether the answerer accepted the sender as leader of `term`.
        success: bool,
    },
}

type Out = crate::protocol::Out<Msg, Timer>;

impl Kind for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::PreVote { .. } => "PreVote",
            Msg::PreVoteReply { .. } => "PreVoteReply",
            Msg::RequestVote { .. } => "RequestVote",
            Msg::RequestVoteReply { .. } => "RequestVoteReply",
            Msg::AppendEntries { .. } => "AppendEntries",
            Msg::AppendEntriesReply { .. } => "AppendEntriesReply",
        }
    }
}

/// Raft's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
pub enum Timer {
    /// A follower, pre-candidate or candidate has waited its randomized election timeout.
    Election,
    /// The leader's heartbeat period.
    Heartbeat,
    /// The leader checks that a majority answered its heartbeats within the last `E`.
    CheckQuorum,
}

impl Kind for Timer {
    fn kind(&self) -> &'static str {
        match self {
            Timer::Election => "Election",
            Timer::Heartbeat => "Heartbeat",
            Timer::CheckQuorum => "CheckQuorum",
        }
    }
}

/// A server's role, with what only that role keeps.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Not started.
    Down,
    /// Following `leader`, if it knows one for the current term.
    Follower {
        /// The leader of the current term, once one has sent a heartbeat.
        leader: Option<NodeId>,
    },
    /// Asking for pre-votes for `term + 1`.
    PreCandidate {
        /// Who would vote for it (itself included).
        grants: BTreeSet<NodeId>,
    },
    /// Campaigning in the current term.
    Candidate {
        /// Who voted for it (itself included).
        votes: BTreeSet<NodeId>,
    },
    /// Leading the current term.
    Leader {
        /// Followers that answered a heartbeat of this term since the last CheckQuorum.
        acked: BTreeSet<NodeId>,
        /// Whether a majority (itself included) has answered a heartbeat of this term.
        confirmed: bool,
    },
}

/// What is persisted: `currentTerm`, `votedFor`, and whether the node may vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Durable {
    term: Term,
    voted_for: Option<NodeId>,
    voter: bool,
}

/// Version byte of the persisted state.
const STATE_VERSION: u8 = 1;
/// Length of the persisted state: version, flags, term, vote.
const STATE_LEN: usize = 14;
const VOTED: u8 = 1;
const NON_VOTER: u8 = 2;

impl Durable {
    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(STATE_LEN);
        bytes.push(STATE_VERSION);
        let mut flags = 0;
        if self.voted_for.is_some() {
            flags |= VOTED;
        }
        if !self.voter {
            flags |= NON_VOTER;
        }
        bytes.push(flags);
        bytes.extend_from_slice(&self.term.to_le_bytes());
        bytes.extend_from_slice(&self.voted_for.map_or(0, |n| n.0).to_le_bytes());
        bytes
    }

    /// The state `encode` wrote, or `None` for anything else (wrong length, version, flags, or
    /// a vote id without the voted flag).
    fn decode(bytes: &[u8]) -> Option<Durable> {
        let bytes: &[u8; STATE_LEN] = bytes.try_into().ok()?;
        let flags = bytes[1];
        if bytes[0] != STATE_VERSION || flags & !(VOTED | NON_VOTER) != 0 {
            return None;
        }
        let term = Term::from_le_bytes(bytes[2..10].try_into().ok()?);
        let id = u32::from_le_bytes(bytes[10..14].try_into().ok()?);
        let voted_for = match flags & VOTED {
            0 if id == 0 => None,
            0 => return None,
            _ => Some(NodeId(id)),
        };
        Some(Durable {
            term,
            voted_for,
            voter: flags & NON_VOTER == 0,
        })
    }
}

/// One Raft server, leader election only (see the [module docs](self)).
#[derive(Debug, Clone, Hash)]
pub struct Raft {
    config: RaftConfig,
    me: NodeId,
    /// `currentTerm`.
    term: Term,
    /// `votedFor` in `term`.
    voted_for: Option<NodeId>,
    /// False after unreadable persisted state: never votes or campaigns.
    voter: bool,
    /// What was last persisted, or the state a first boot starts from (a crash before the first
    /// write boots from `None` into that same state).
    durable: Durable,
    role: Role,
    /// When the current leader's last heartbeat arrived (followers only).
    heard_leader_at: Option<Time>,
}

impl Raft {
    /// `currentTerm`.
    pub fn term(&self) -> Term {
        self.term
    }

    /// `votedFor` in the current term.
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }

    /// The server's role.
    pub fn role(&self) -> &Role {
        &self.role
    }

    /// Whether this server leads the current term (confirmed by a majority or not yet).
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader { .. })
    }

    /// False once the server booted from unreadable state (see the module docs).
    pub fn is_voter(&self) -> bool {
        self.voter
    }

    fn state(&self) -> Durable {
        Durable {
            term: self.term,
            voted_for: self.voted_for,
            voter: self.voter,
        }
    }

    /// Persists `currentTerm`, `votedFor` and the voter flag if they changed since the last
    /// time. Every send calls it first, so nothing leaves before the state it depends on is
    /// durable.
    fn flush(&mut self, out: &mut Out) {
        let state = self.state();
        if self.durable != state {
            out.persist(state.encode());
            self.durable = state;
        }
    }

    fn send(&mut self, to: NodeId, msg: Msg, out: &mut Out) {
        self.flush(out);
        out.send(to, msg);
    }

    fn broadcast(&mut self, msg: Msg, out: &mut Out) {
        self.flush(out);
        out.broadcast(msg);
    }

    fn majority(cx: &Context<'_>) -> usize {
        cx.members.len() / 2 + 1
    }

    /// Arms the election timer for a wait uniform in `[from, from + E]`.
    fn arm_election(&mut self, cx: &mut Context<'_>, from: Time, out: &mut Out) {
        if self.voter {
            let e = self.config.election_timeout();
            let after = from.saturating_add(cx.rng.random_range(0..=e));
            out.set_timer(Timer::Election, after);
        }
    }

    /// Whether this server recently heard a leader of its term (or is one): it then refuses
    /// pre-votes and, with CheckQuorum, ignores RequestVote.
    fn in_lease(&self, now: Time) -> bool {
        match self.role {
            Role::Leader { .. } => true,
            Role::Follower { leader: Some(_) } => self
                .heard_leader_at
                .is_some_and(|t| now < t.saturating_add(self.config.election_timeout())),
            _ => false,
        }
    }

    /// Becomes a follower of `leader` (or of nobody yet) in the current term, with a fresh
    /// election timeout.
    fn become_follower(&mut self, cx: &mut Context<'_>, leader: Option<NodeId>, out: &mut Out) {
        if self.is_leader() {
            out.cancel_timer(Timer::Heartbeat);
            out.cancel_timer(Timer::CheckQuorum);
        }
        self.role = Role::Follower { leader };
        self.heard_leader_at = leader.map(|_| cx.now);
        self.arm_election(cx, self.config.election_timeout(), out);
    }

    /// §5.1: a higher term makes any server a follower of that term, without a vote.
    fn adopt_term(&mut self, cx: &mut Context<'_>, term: Term, out: &mut Out) {
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.become_follower(cx, None, out);
        }
    }

    /// The election timer fired: campaign (after a PreVote round if configured).
    fn on_election_timeout(&mut self, cx: &mut Context<'_>, out: &mut Out) {
        if !self.voter || self.is_leader() || self.role == Role::Down {
            return;
        }
        if !self.config.options.pre_vote {
            return self.start_election(cx, out);
        }
        self.role = Role::PreCandidate {
            grants: BTreeSet::from([self.me]),
        };
        self.heard_leader_at = None;
        self.arm_election(cx, self.config.election_timeout(), out);
        if !self.count_pre_votes(cx, out) {
            self.broadcast(
                Msg::PreVote {
                    term: self.term + 1,
                },
                out,
            );
        }
    }

    /// Holds a real election if a majority granted pre-votes; returns whether it did.
    fn count_pre_votes(&mut self, cx: &mut Context<'_>, out: &mut Out) -> bool {
        let Role::PreCandidate { grants } = &self.role else {
            return false;
        };
        let won = grants.len() >= Self::majority(cx);
        if won {
            self.start_election(cx, out);
        }
        won
    }

    /// Increment the term, vote for self, reset the timer, ask everyone for a vote.
    fn start_election(&mut self, cx: &mut Context<'_>, out: &mut Out) {
        self.term += 1;
        self.voted_for = Some(self.me);
        self.role = Role::Candidate {
            votes: BTreeSet::from([self.me]),
        };
        self.heard_leader_at = None;
        self.arm_election(cx, self.config.election_timeout(), out);
        if !self.count_votes(cx, out) {
            self.broadcast(Msg::RequestVote { term: self.term }, out);
        }
    }

    /// Becomes leader if a majority voted; returns whether it did.
    fn count_votes(&mut self, cx: &mut Context<'_>, out: &mut Out) -> bool {
        let Role::Candidate { votes } = &self.role else {
            return false;
        };
        let won = votes.len() >= Self::majority(cx);
        if won {
            self.become_leader(cx, out);
        }
        won
    }

    fn become_leader(&mut self, cx: &mut Context<'_>, out: &mut Out) {
        self.role = Role::Leader {
            acked: BTreeSet::new(),
            confirmed: false,
        };
        self.count_acks(cx);
        out.cancel_timer(Timer::Election);
        self.broadcast(Msg::AppendEntries { term: self.term }, out);
        out.set_timer(Timer::Heartbeat, self.config.timing.heartbeat);
        if self.config.options.check_quorum {
            out.set_timer(Timer::CheckQuorum, self.config.election_timeout());
        }
    }

    /// Marks the leader confirmed once a majority (itself included) answered.
    fn count_acks(&mut self, cx: &Context<'_>) {
        let majority = Self::majority(cx);
        if let Role::Leader { acked, confirmed } = &mut self.role {
            if acked.len() + 1 >= majority {
                *confirmed = true;
            }
        }
    }

    fn on_pre_vote(&mut self, cx: &mut Context<'_>, from: NodeId, term: Term, out: &mut Out) {
        let granted = self.voter && term > self.term && !self.in_lease(cx.now);
        let term = if granted { term } else { self.term };
        self.send(from, Msg::PreVoteReply { term, granted }, out);
    }

    fn on_pre_vote_reply(
        &mut self,
        cx: &mut Context<'_>,
        from: NodeId,
        term: Term,
        granted: bool,
        out: &mut Out,
    ) {
        if !granted {
            return self.adopt_term(cx, term, out);
        }
        if term != self.term + 1 {
            return;
        }
        if let Role::PreCandidate { grants } = &mut self.role {
            grants.insert(from);
            self.count_pre_votes(cx, out);
        }
    }

    fn on_request_vote(&mut self, cx: &mut Context<'_>, from: NodeId, term: Term, out: &mut Out) {
        if term < self.term {
            let reply = Msg::RequestVoteReply {
                term: self.term,
                granted: false,
            };
            return self.send(from, reply, out);
        }
        if self.config.options.check_quorum && self.in_lease(cx.now) {
            // §4.2.3: neither adopt the term nor vote while a leader is heard.
            return;
        }
        self.adopt_term(cx, term, out);
        let granted = self.voter && self.voted_for.is_none_or(|v| v == from);
        if granted {
            self.voted_for = Some(from);
            if matches!(self.role, Role::PreCandidate { .. }) {
                // It backs another candidate of this term now; its own PreVote round is moot.
                self.become_follower(cx, None, out);
            } else {
                self.arm_election(cx, self.config.election_timeout(), out);
            }
        }
        let reply = Msg::RequestVoteReply {
            term: self.term,
            granted,
        };
        self.send(from, reply, out);
    }

    fn on_request_vote_reply(
        &mut self,
        cx: &mut Context<'_>,
        from: NodeId,
        term: Term,
        granted: bool,
        out: &mut Out,
    ) {
        if term > self.term {
            return self.adopt_term(cx, term, out);
        }
        if term < self.term || !granted {
            return;
        }
        if let Role::Candidate { votes } = &mut self.role {
            votes.insert(from);
            self.count_votes(cx, out);
        }
    }

    fn on_append_entries(&mut self, cx: &mut Context<'_>, from: NodeId, term: Term, out: &mut Out) {
        if term < self.term {
            // A stale leader (or one this node outran in a partition): it steps down on this.
            let reply = Msg::AppendEntriesReply {
                term: self.term,
                success: false,
            };
            return self.send(from, reply, out);
        }
        self.adopt_term(cx, term, out);
        if self.is_leader() {
            // Two leaders of one term cannot exist (one vote per term); ignore rather than trust.
            return;
        }
        self.become_follower(cx, Some(from), out);
        let reply = Msg::AppendEntriesReply {
            term: self.term,
            success: true,
        };
        self.send(from, reply, out);
    }

    fn on_append_entries_reply(
        &mut self,
        cx: &mut Context<'_>,
        from: NodeId,
        term: Term,
        success: bool,
        out: &mut Out,
    ) {
        if term > self.term {
            return self.adopt_term(cx, term, out);
        }
        if term < self.term || !success {
            return;
        }
        if let Role::Leader { acked, .. } = &mut self.role {
            acked.insert(from);
            self.count_acks(cx);
        }
    }

    fn on_check_quorum(&mut self, cx: &mut Context<'_>, out: &mut Out) {
        let majority = Self::majority(cx);
        let Role::Leader { acked, .. } = &mut self.role else {
            return;
        };
        if acked.len() + 1 < majority {
            // §6.2: no majority heard within an election timeout; stop claiming to lead.
            return self.become_follower(cx, None, out);
        }
        acked.clear();
        out.set_timer(Timer::CheckQuorum, self.config.election_timeout());
    }
}

/// `heard_leader_at` is compared only as "less than an election timeout ago" (the lease).
impl Explorable for Raft {
    fn reclock(&mut self, clock: Reclock) {
        let lease = self.config.election_timeout();
        self.heard_leader_at = self.heard_leader_at.map(|t| clock.past(t, lease));
    }

    fn epoch(&self) -> u64 {
        self.term
    }
}

impl Protocol for Raft {
    const NAME: &'static str = "raft";
    type Options = RaftOptions;
    type Msg = Msg;
    type Timer = Timer;

    fn new(config: &RaftConfig) -> Self {
        Raft {
            config: *config,
            me: NodeId(0),
            term: 0,
            voted_for: None,
            voter: true,
            durable: Durable {
                term: 0,
                voted_for: None,
                voter: true,
            },
            role: Role::Down,
            heard_leader_at: None,
        }
    }

    /// Raft's safety holds in any run of the asynchronous model: at most one leader per term
    /// (Election Safety), and followers of one term follow that term's leader (Assertion 1 per
    /// term). No validity: any node with a majority's votes may win. Liveness needs a live,
    /// connected majority, and the guarantees hold only while the membership does not change
    /// (see "Membership" in the module docs).
    fn properties(_config: &RaftConfig) -> Properties {
        Properties {
            model: Model::Asynchronous,
            agreement: Some(Scope::Term),
            unique_leader: Some(Scope::Term),
            highest_wins: false,
            quorum: true,
            membership: false,
        }
    }

    /// `E / 50`: a heartbeat round trip is at most 4 % of the election timeout, Raft's
    /// `broadcastTime ≪ electionTimeout`. The bound needs it small: the chance that a second
    /// node's timer fires while the first campaign is still on its way grows with the delay
    /// over `E`. Heartbeats then arrive at most `heartbeat + max_delay < E` apart, so a follower
    /// of a live leader never times out, even on a clock 20 % fast.
    fn max_delay(config: &RaftConfig) -> Time {
        config.election_timeout() / DELAY_FRACTION
    }

    /// `A + J·R_b + K·R_c + w + 3d` after the last fault, with probability at least
    /// `1 - LIVENESS_FAILURE`, provided a majority of the members is live and connected, the
    /// membership no longer changes, and every message arrives within `d` =
    /// [`max_delay`](Raft::max_delay). With fewer live members than a majority no leader can be
    /// elected at all.
    ///
    /// Raft's liveness is probabilistic: two timers that fire close together split the vote, and
    /// that can repeat. Write `h` for the heartbeat, `E` for the election timeout, `w` for the
    /// [campaign time](RaftConfig::campaign_time) (`d`, or `3d` with PreVote), `L` = `E` if
    /// PreVote or CheckQuorum holds leases (else 0), `n` for the members ever seen. Time starts
    /// when the network is calm (the simulator adds the delay of stale messages itself).
    ///
    /// 1. **Old leaders and leases are gone by `A = 2E + h + 2d + L`, and the first election
    ///    begins by then plus `2E`.** A leader from before the calm sends a heartbeat within `h`;
    ///    a node with a higher term answers it with that term within `2d`, and the leader steps
    ///    down. A leader that stays has the highest term: within `h + d` everyone follows it and
    ///    within `2d` more a majority has answered — settled, unless its first CheckQuorum (at
    ///    most `E` away, its window reaching back before the calm) fails, or a candidate raises
    ///    the term; leases from its heartbeats end `L + d` after the last one. A node without a
    ///    leader fires within `2E` of its last reset; one that fired while others held a lease
    ///    draws again and fires within `2E` more.
    /// 2. **At most `J = n - 1` elections begin with a node below the highest term.** Such a
    ///    candidate either loses, refused with the higher term by a node that has it, or wins
    ///    without that node and then steps down within `2d` when the node answers its first
    ///    heartbeat with the higher term. Either way it has adopted the highest term, which only
    ///    grows the set of nodes holding it. Each such cycle lasts at most
    ///    `R_b = 2E + w + 3d + L` (campaign, win, step-down, its followers' lease, their timers).
    /// 3. **Every other election fails with probability at most `f`** (see
    ///    [`RaftConfig::round_failure`]). Once an election begins at the highest term, every live
    ///    node takes up that term in it, and every node redraws its timeout (it grants a vote, or
    ///    campaigns itself) within `[s, s + 2w]` of its start `s`, so elections after a failed one
    ///    begin with fresh, independent draws, each uniform over an interval of length `E` (of
    ///    length `0.8E` on a clock 20 % fast, which is what `f` uses). The first candidate `c`
    ///    fires at `s`; its RequestVote is at every node by `s + w`, and every node that has not
    ///    campaigned by then grants it and resets its timer. So `c` wins by `s + w + d` unless
    ///    another node fires in `(s, s + w]`. For node `j` that means its deadline lands within
    ///    `w` after the earliest of the others, probability at most `w / 0.8E` whatever the
    ///    others do; over `n` nodes, at most `n·w / 0.8E`. For large `n` this is weaker than the
    ///    spacing argument: the fresh draws lie within `2w` of each other at their start, so
    ///    the election succeeds if the two smallest of `n` uniform draws are more than `3w` apart,
    ///    which fails with probability `1 - (1 - 3w/0.8E)^n`. `f` is the smaller of the two. A
    ///    failed election is over, and the next one begun, within `R_c = 2E + 2w`.
    /// 4. With `K` = [`RaftConfig::rounds`] such elections, all fail with probability at most
    ///    `f^K ≤ LIVENESS_FAILURE`. The successful one has a leader `w + d` after it began,
    ///    followers of its first heartbeat `d` later, and the majority's answers after another
    ///    `d`: `w + 3d`.
    ///
    /// For five nodes with the simulator's default timing (`h` = 50 ms, answer timeout 20 ms,
    /// so `E` = 120 ms, `d` = 2.4 ms) and both options on, `f` = 0.375, `K` = 15, and the bound
    /// is 5.98 s, about 50 `E`: most of it is the allowance for unlucky rounds. The bound
    /// grows fast with `n` (each node is one more timer that can collide): Raft is built for a
    /// handful of voters, and for large clusters the bound stops being useful. Saturates at
    /// `u64::MAX`.
    fn liveness_bound(config: &RaftConfig, n: usize) -> Time {
        let (h, e, d) = (
            config.timing.heartbeat,
            config.election_timeout(),
            Raft::max_delay(config),
        );
        let w = config.campaign_time();
        let lease = if config.options.pre_vote || config.options.check_quorum {
            e
        } else {
            0
        };
        let first = (4 * e).saturating_add(h + 2 * d).saturating_add(lease);
        let behind = (n as u64).saturating_sub(1);
        let cycle_behind = (2 * e).saturating_add(w + 3 * d).saturating_add(lease);
        let cycle = (2 * e).saturating_add(2 * w);
        first
            .saturating_add(behind.saturating_mul(cycle_behind))
            .saturating_add(config.rounds(n).saturating_mul(cycle))
            .saturating_add(w + 3 * d)
    }

    /// The complexity table's boot: one uncontested election — PreVote, RequestVote and the
    /// first heartbeat, each to and from the `n - 1` others — at least (a split vote costs
    /// another round). The other two rows crash node n−1, which in Raft need not be the
    /// leader: no bound is claimed for them.
    fn message_bounds(n: u64) -> MessageBounds {
        MessageBounds {
            boot: Some(Bound::at_least(
                "6(n-1) PreVote, RequestVote, AppendEntries + answers",
                6 * n.saturating_sub(1),
            )),
            best: None,
            worst: None,
        }
    }

    /// Restores `currentTerm` and `votedFor`; a first boot starts at term 0. Unreadable bytes
    /// make a non-voter (see the module docs), persisted at once.
    fn on_start(&mut self, cx: &mut Context<'_>, persisted: Option<&[u8]>, out: &mut Out) {
        self.me = cx.id;
        match persisted.map(Durable::decode) {
            None => {}
            Some(Some(state)) => {
                self.term = state.term;
                self.voted_for = state.voted_for;
                self.voter = state.voter;
                self.durable = state;
            }
            Some(None) => {
                self.voter = false;
                self.flush(out);
            }
        }
        self.become_follower(cx, None, out);
    }

    fn on_message(&mut self, cx: &mut Context<'_>, from: NodeId, msg: Msg, out: &mut Out) {
        if self.role == Role::Down || from == self.me || !cx.members.contains(from) {
            return;
        }
        match msg {
            Msg::PreVote { term } => self.on_pre_vote(cx, from, term, out),
            Msg::PreVoteReply { term, granted } => {
                self.on_pre_vote_reply(cx, from, term, granted, out)
            }
            Msg::RequestVote { term } => self.on_request_vote(cx, from, term, out),
            Msg::RequestVoteReply { term, granted } => {
                self.on_request_vote_reply(cx, from, term, granted, out)
            }
            Msg::AppendEntries { term } => self.on_append_entries(cx, from, term, out),
            Msg::AppendEntriesReply { term, success } => {
                self.on_append_entries_reply(cx, from, term, success, out)
            }
        }
        self.flush(out);
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, timer: Timer, out: &mut Out) {
        match timer {
            Timer::Election => self.on_election_timeout(cx, out),
            Timer::Heartbeat => {
                if self.is_leader() {
                    self.broadcast(Msg::AppendEntries { term: self.term }, out);
                    out.set_timer(Timer::Heartbeat, self.config.timing.heartbeat);
                }
            }
            Timer::CheckQuorum => self.on_check_quorum(cx, out),
        }
        self.flush(out);
    }

    fn on_membership(&mut self, cx: &mut Context<'_>, change: Membership, out: &mut Out) {
        let Membership::Left(gone) = change else {
            // A joiner only enlarges the table the next count reads.
            return;
        };
        match &mut self.role {
            Role::Follower { leader } if *leader == Some(gone) => {
                self.role = Role::Follower { leader: None };
                self.heard_leader_at = None;
                self.arm_election(cx, 0, out);
            }
            Role::PreCandidate { grants } => {
                grants.remove(&gone);
                self.count_pre_votes(cx, out);
            }
            Role::Candidate { votes } => {
                votes.remove(&gone);
                self.count_votes(cx, out);
            }
            Role::Leader { acked, .. } => {
                acked.remove(&gone);
                self.count_acks(cx);
            }
            _ => {}
        }
        self.flush(out);
    }

    fn status(&self) -> Status {
        let (state, coordinator, phase) = match self.role {
            Role::Down => return Status::down(),
            Role::Follower { leader: Some(l) } => (State::Normal, Some(l), "Follower"),
            Role::Follower { leader: None } => (State::Election, None, "Follower"),
            Role::PreCandidate { .. } => (State::Election, None, "PreCandidate"),
            Role::Candidate { .. } => (State::Election, None, "Candidate"),
            Role::Leader { confirmed, .. } => {
                let state = if confirmed {
                    State::Normal
                } else {
                    State::Reorganization
                };
                (state, Some(self.me), "Leader")
            }
        };
        Status {
            state,
            coordinator,
            group: None,
            incarnation: None,
            term: Some(self.term),
            phase,
        }
    }
}
