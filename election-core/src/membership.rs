//! Membership as a sans-IO layer under the protocols: who is in the cluster, at which address,
//! under which id — joins, welcomes, announcements, leaves and id assignment.
//!
//! A member's table is a [`View`]; a node asking to join is a [`Joining`]. Both are pure state
//! machines over an address type `A` (a `SocketAddr` on real nodes, anything ordered in a
//! simulator): the driver hands them what arrived ([`View::on_control`], [`View::on_tick`],
//! [`Joining::on_reply`]) and carries out the [`Effect`]s they push, in order — send a
//! [`Control`] message to an address, deliver a [`Membership`] change to the protocol (the
//! table in [`View::members`] is already updated), persist the last assigned id, count a
//! rejected message. Time does not enter (the driver calls [`View::on_tick`] on its own
//! period); randomness arrives as an argument.
//!
//! # Driving it
//!
//! ```text
//! boot from server_config   View::from_config(lines, me, assigned, config), View::restore(the
//!                           table persisted after its last change), then View::hello
//! boot with --join MEMBER   Joining::new(MEMBER, tries).claiming(the id persisted below)
//!                           loop: Joining::request → send; Joining::on_reply(from, msg)
//!                           until it yields a View (welcome) or a JoinError (refusal, no answer)
//!                           then persist View::id, View::announce
//! a control message         View::on_control(from, msg, effects)
//! every announce period     View::on_tick(rng, effects)
//! graceful stop             View::leave(effects)
//! ```
//!
//! Protocol messages from an address the view does not hold ([`View::id_of`] is `None`) are the
//! driver's to drop.
//!
//! # Ids: who may assign which, and why two joiners never share one
//!
//! An id is a priority (`NodeId` order), and a joiner must outrank every member its admitter
//! knows. Ids below [`SLOTS`] are `server_config` line positions. Only the nodes of the first
//! [`SLOTS`] lines admit joiners (*admitters*); the admitter of line `s` has *slot* `s` and
//! gives a joiner the smallest id that is
//!
//! 1. larger than every id it has seen or assigned (`base`), and
//! 2. congruent to `s` modulo [`SLOTS`],
//!
//! computed with checked arithmetic (running out is [`Refusal::IdsExhausted`], never a wrap).
//! It persists the id ([`Effect::PersistAssigned`]) before it sends the welcome, and restores it
//! on boot. Other members answer a join with [`Refusal::NotAnAdmitter`] and the admitters'
//! addresses, and the joiner asks those in turn.
//!
//! *Claim.* No two members are ever given the same id.
//! *Proof.* Config ids are distinct line positions below [`SLOTS`]. An admitted id `c` satisfies
//! `c > base ≥ s` (the admitter is a member of id `s`) and `c ≡ s`, so `c ≥ s + SLOTS ≥ SLOTS`:
//! never a config id. Two different admitters have different slots (distinct lines), so their
//! ids differ modulo [`SLOTS`]. One admitter's ids strictly grow, across restarts too, because
//! `base` includes the persisted last assignment. ∎
//!
//! *A process's own claim.* A joiner persists the id its welcome gave it and claims it in every
//! later [`Control::Join`] (after a restart it may ask another admitter, one that has not heard of
//! it yet, and a fresh id there would give the one process two ids: tables that hold the larger
//! would reject the smaller at the same address as a conflict). An admitter that does not know
//! the joiner's address lets it in under the claimed id instead of a fresh one, provided the id
//! is a joiner's (`≥` [`SLOTS`]), no other address holds it in its table and it did not leave
//! (tombstone); otherwise it assigns as above. This keeps the uniqueness claim above: the
//! id was given to this same process, so no second process holds it, and `base` rises to it so
//! the admitter's own later ids stay above it. (It trusts the claimant as every announcement is
//! trusted: the driver authenticates messages.)
//!
//! No agreement round is needed, so this holds with lost messages, crashed members and
//! partitions — two joiners racing through different members at the same instant get ids of
//! different slots, both above everything their admitters knew. The assumptions are that every
//! node reads the same `server_config` and that an admitter's persisted assignment survives its
//! restarts (as the asynchronous Bully's incarnation must).
//!
//! # What is believed, from whom
//!
//! Entries enter a table only from the config, from the welcome this node got, from a
//! `Welcome`-time or periodic [`Control::Announce`] of a *member*, or from a booting node's own
//! [`Control::Hello`] that matches a config line (which is answered with the whole table, so the
//! rebooted node learns at once who joined while it was down). When the driver authenticates every message
//! (a cluster key, [`ViewConfig::authenticated`]) an authenticated non-member may announce
//! itself too, which is how a node removed by mistake comes back. A `Left` counts only from the
//! leaver itself, and the id it leaves is remembered (a bounded set of tombstones) so a
//! late announcement by a third party does not resurrect it. An address seen under a larger id
//! than the one held is a rejoin: the old id leaves, the new one joins. Conflicting entries (an
//! id at another address, my own address under another id) are rejected and counted. The table
//! never grows past [`ViewConfig::max_members`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::protocol::{Members, Membership, NodeId};

/// Admitter slots: config lines `0..SLOTS` admit joiners, and joiners' ids are `≥ SLOTS`.
pub const SLOTS: u32 = 1024;

/// The membership messages nodes exchange (the driver authenticates and frames them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control<A> {
    /// The sender asks to join.
    Join {
        /// The id an earlier welcome gave the sender (it persisted it): see *A process's own
        /// claim* in the module doc.
        claim: Option<NodeId>,
    },
    /// The answer to [`Control::Join`]: every member with its id, the joiner included.
    Welcome {
        /// All members, lowest id first.
        members: Vec<(NodeId, A)>,
    },
    /// The answer to a join that is not granted.
    Refused {
        /// Why.
        reason: Refusal,
        /// Members that may admit (for [`Refusal::NotAnAdmitter`]).
        admitters: Vec<A>,
    },
    /// Members the sender holds: a new member right after its admission, the answer to a
    /// [`Control::Digest`] or [`Control::Hello`] that differs from the receiver's table, or
    /// the answer to a table that lacks some of the receiver's members.
    Announce {
        /// The entries.
        members: Vec<(NodeId, A)>,
    },
    /// A booting node of the config says it is (back) at its line.
    Hello {
        /// Its config line position.
        id: NodeId,
        /// [`View::digest`] of the table it booted with: a member whose table has the same
        /// digest does not answer with its table (absent from older senders: always answered).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        digest: Option<u64>,
    },
    /// Periodic: the [`View::digest`] of the sender's table. A member whose table differs
    /// answers with its whole table (and the sender answers that if it lacks members of its).
    Digest {
        /// The sender's table digest.
        digest: u64,
    },
    /// The sender leaves gracefully.
    Left,
}

/// Why a join is refused; the joiner shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// The table is at its cap.
    #[error("the cluster is full: {max} members (raise --max-members on every member)")]
    Full {
        /// The cap.
        max: u32,
    },
    /// No id above `highest` is left in the admitter's slot.
    #[error("no id above {highest} is left to assign")]
    IdsExhausted {
        /// The highest id the admitter knows.
        highest: NodeId,
    },
    /// The member asked is not one of the first config lines, which alone assign ids.
    #[error("the member asked does not admit joiners (only server_config members do)")]
    NotAnAdmitter,
}

/// Why a control message (or one entry of it) was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rejection {
    /// From an address that is not a member, and not authenticated.
    UnknownSender,
    /// An entry contradicts the table (an id held at another address, my own address or id
    /// claimed by another).
    Conflict,
    /// The table is at [`ViewConfig::max_members`].
    Full,
    /// Not expected here (a welcome or refusal to a member, a hello off the config).
    Unexpected,
}

impl Rejection {
    /// A stable kebab-case name, for drop counters.
    pub fn name(self) -> &'static str {
        match self {
            Rejection::UnknownSender => "unknown-sender",
            Rejection::Conflict => "member-conflict",
            Rejection::Full => "members-full",
            Rejection::Unexpected => "unexpected-control",
        }
    }
}

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect<A> {
    /// Send `msg` to `to`.
    Send {
        /// The receiver.
        to: A,
        /// The message.
        msg: Control<A>,
    },
    /// Deliver this change to the protocol (the table is already updated).
    Change(Membership),
    /// Store this id durably before carrying out the effects after it; hand it back to
    /// [`View::from_config`] on the next boot.
    PersistAssigned(NodeId),
    /// A message from `from` (or part of it) was not taken: count it.
    Rejected {
        /// Its sender.
        from: A,
        /// Why.
        why: Rejection,
    },
}

/// The layer's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewConfig {
    /// The largest table (members, this node included).
    pub max_members: usize,
    /// Whether the driver authenticates every message it hands over (a cluster key). Then an
    /// authenticated non-member may announce itself; without it only members may.
    pub authenticated: bool,
}

/// Why a table cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// More entries than the cap.
    #[error("{len} members exceed the cap of {max} (--max-members)")]
    TooMany {
        /// Entries.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// This node is not in the table.
    #[error("this node's address is not in the member list")]
    NotListed,
    /// Two entries share an id or an address.
    #[error("the member list holds {0} twice")]
    Duplicate(String),
}

/// Why a join failed, as the joiner reports it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// A member refused.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// No welcome after every request.
    #[error(
        "no welcome after {tries} join requests (is the member up, and does --key-file hold a key of the cluster? members drop datagrams they cannot authenticate)"
    )]
    NoAnswer {
        /// Requests sent.
        tries: u32,
    },
    /// The welcome does not make a table.
    #[error("bad welcome: {0}")]
    BadWelcome(ViewError),
}

/// One member's table: ids, addresses, who it is, and what it has assigned.
#[derive(Clone, Debug)]
pub struct View<A> {
    config: ViewConfig,
    me: A,
    id: NodeId,
    members: Members,
    addrs: BTreeMap<NodeId, A>,
    ids: BTreeMap<A, NodeId>,
    /// The config lines (empty on a joiner), for accepting a rebooted node's hello.
    lines: BTreeMap<NodeId, A>,
    /// The highest id seen or assigned (never shrinks).
    base: NodeId,
    /// Ids that left; a third party's announcement of one is ignored.
    tombstones: BTreeSet<NodeId>,
    /// Senders whose tables were answered since the last [`View::on_tick`].
    answered: BTreeSet<A>,
    /// XOR of the entries' [`entry_digest`]s, kept up to date by every insert and removal.
    digest: u64,
}

/// 64 bits of SHA-256 over an entry's JSON: the same on every build and machine (std's hashers
/// promise neither), and an XOR of them is the same for any order the entries came in.
fn entry_digest<A: Serialize>(id: NodeId, addr: &A) -> u64 {
    let json = serde_json::to_vec(&(id, addr)).expect("an id and an address serialise");
    let hash = Sha256::digest(json);
    u64::from_le_bytes(hash[..8].try_into().expect("32 bytes"))
}

impl<A: Clone + Ord + Debug + Serialize> View<A> {
    /// The table of a node booting from `server_config`: line `i` has id `i`. `assigned` is the
    /// last [`Effect::PersistAssigned`] of a previous run.
    pub fn from_config(
        lines: &[A],
        me: &A,
        assigned: Option<NodeId>,
        config: ViewConfig,
    ) -> Result<Self, ViewError> {
        let entries: Vec<(NodeId, A)> = lines
            .iter()
            .enumerate()
            .map(|(i, a)| (NodeId(i as u32), a.clone()))
            .collect();
        let mut view = Self::build(&entries, me, config)?;
        view.lines = view.addrs.clone();
        view.base = view.base.max(assigned.unwrap_or(NodeId(0)));
        Ok(view)
    }

    fn build(entries: &[(NodeId, A)], me: &A, config: ViewConfig) -> Result<Self, ViewError> {
        if entries.len() > config.max_members {
            return Err(ViewError::TooMany {
                len: entries.len(),
                max: config.max_members,
            });
        }
        let mut view = View {
            config,
            me: me.clone(),
            id: NodeId(0),
            members: Members::default(),
            addrs: BTreeMap::new(),
            ids: BTreeMap::new(),
            lines: BTreeMap::new(),
            base: NodeId(0),
            tombstones: BTreeSet::new(),
            answered: BTreeSet::new(),
            digest: 0,
        };
        for (id, addr) in entries {
            if view.addrs.contains_key(id) {
                return Err(ViewError::Duplicate(id.to_string()));
            }
            if view.ids.contains_key(addr) {
                return Err(ViewError::Duplicate(format!("{addr:?}")));
            }
            view.insert(*id, addr.clone());
        }
        view.id = *view.ids.get(me).ok_or(ViewError::NotListed)?;
        Ok(view)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// This node's address.
    pub fn me(&self) -> &A {
        &self.me
    }

    /// The ids, for the protocol's [`crate::Context`].
    pub fn members(&self) -> &Members {
        &self.members
    }

    /// A digest of [`View::entries`]: equal tables have equal digests on every node, whatever
    /// order they learned their entries in (unequal ones differ but with probability 2⁻⁶⁴).
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// Every member with its address, lowest id first.
    pub fn entries(&self) -> Vec<(NodeId, A)> {
        self.addrs.iter().map(|(i, a)| (*i, a.clone())).collect()
    }

    /// The address of member `id`.
    pub fn addr_of(&self, id: NodeId) -> Option<&A> {
        self.addrs.get(&id)
    }

    /// The id of the member at `addr`.
    pub fn id_of(&self, addr: &A) -> Option<NodeId> {
        self.ids.get(addr).copied()
    }

    /// Every member but this node.
    pub fn others(&self) -> impl Iterator<Item = &A> {
        self.addrs.values().filter(move |a| **a != self.me)
    }

    /// This node's admitter slot, if it admits joiners.
    pub fn slot(&self) -> Option<u32> {
        (self.id.0 < SLOTS && self.lines.get(&self.id) == Some(&self.me)).then_some(self.id.0)
    }

    /// The id the next joiner would get: the smallest above everything seen and assigned, in
    /// this node's slot; `None` when none is left (or this node does not admit).
    pub fn next_id(&self) -> Option<NodeId> {
        let slot = self.slot()?;
        let base = self.base.0;
        let candidate = (base / SLOTS).checked_mul(SLOTS)?.checked_add(slot)?;
        let id = if candidate > base {
            candidate
        } else {
            candidate.checked_add(SLOTS)?
        };
        Some(NodeId(id))
    }

    /// Adds the entries of this node's table as the driver last persisted it (its copy of
    /// [`View::entries`] after every change), before [`View::hello`]: a restarted member then
    /// knows, and greets, the members that joined before its crash — otherwise it would know only
    /// the config lines, and an admitter that restarts while its joiners are the only live
    /// members would lead alone beside them. Entries for this node, for ids or addresses the
    /// table holds already, or beyond the cap are skipped.
    pub fn restore(&mut self, entries: &[(NodeId, A)]) {
        for (id, addr) in entries {
            let known = self.addrs.contains_key(id) || self.id_of(addr).is_some();
            if *addr == self.me || known || self.addrs.len() >= self.config.max_members {
                continue;
            }
            self.insert(*id, addr.clone());
        }
    }

    /// Boot: tell every other member this node is (back) at its line.
    pub fn hello(&self, effects: &mut Vec<Effect<A>>) {
        let hello = Control::Hello {
            id: self.id,
            digest: Some(self.digest),
        };
        self.send_all(hello, None, effects);
    }

    /// Graceful stop: tell every other member.
    pub fn leave(&self, effects: &mut Vec<Effect<A>>) {
        self.send_all(Control::Left, None, effects);
    }

    /// Periodic anti-entropy: this table's digest to one other member chosen at random, who
    /// answers with its table if it differs, so a member removed by mistake, or missed by a lost
    /// announcement, comes back. A digest, not the table: a steady cluster of n members used to
    /// exchange n tables of n entries every period.
    pub fn on_tick(&mut self, rng: &mut dyn Rng, effects: &mut Vec<Effect<A>>) {
        self.answered.clear();
        let others: Vec<&A> = self.others().collect();
        if others.is_empty() {
            return;
        }
        let to = others[rng.next_u64() as usize % others.len()].clone();
        effects.push(Effect::Send {
            to,
            msg: Control::Digest {
                digest: self.digest,
            },
        });
    }

    /// Right after a welcome: the whole table to every other member, whose answers (they answer
    /// a table that lacks members of theirs) fill in joiners admitted at the same time by other
    /// admitters.
    pub fn announce(&self, effects: &mut Vec<Effect<A>>) {
        self.send_all(
            Control::Announce {
                members: self.entries(),
            },
            None,
            effects,
        );
    }

    fn announce_to(&self, to: &A, effects: &mut Vec<Effect<A>>) {
        effects.push(Effect::Send {
            to: to.clone(),
            msg: Control::Announce {
                members: self.entries(),
            },
        });
    }

    /// A control message from `from`.
    pub fn on_control(&mut self, from: &A, msg: Control<A>, effects: &mut Vec<Effect<A>>) {
        let sender = self.id_of(from);
        match msg {
            Control::Join { claim } => self.on_join(from, claim, effects),
            Control::Announce { members } => {
                if sender.is_none() && !self.config.authenticated {
                    return reject(from, Rejection::UnknownSender, effects);
                }
                // A whole table (it lists its sender) that lacks members of mine is answered
                // with mine, once per sender per announce period (so two tables that can never
                // agree, by a tombstone or a full table, do not ping-pong).
                let whole = members.iter().any(|(_, a)| a == from);
                let listed: BTreeSet<NodeId> = members.iter().map(|(id, _)| *id).collect();
                let lacking = self.addrs.keys().any(|id| !listed.contains(id));
                let before = effects.len();
                for (id, addr) in members {
                    // The sender's own entry proves itself; a third party's cannot undo a leave.
                    let own = addr == *from;
                    if own || !self.tombstones.contains(&id) {
                        self.learn(from, id, addr, effects);
                    }
                }
                // Every member this table just learned gets it too: two joiners admitted at
                // once by different admitters hear of each other this way.
                let learned: Vec<A> = effects[before..]
                    .iter()
                    .filter_map(|e| match e {
                        Effect::Change(Membership::Joined(id)) => self.addrs.get(id).cloned(),
                        _ => None,
                    })
                    .collect();
                if whole && lacking && self.answered.insert(from.clone()) && !learned.contains(from)
                {
                    self.announce_to(from, effects);
                }
                for to in learned {
                    self.announce_to(&to, effects);
                }
            }
            Control::Hello { id, digest } => {
                let on_line = self.lines.get(&id) == Some(from);
                if !(on_line || self.config.authenticated && id.0 < SLOTS) {
                    return reject(from, Rejection::Unexpected, effects);
                }
                self.learn(from, id, from.clone(), effects);
                // A rebooted node knows the config and the table it persisted: tell it who
                // joined meanwhile now, instead of leaving that to the random
                // re-announcements — unless its table is this one. Answering every hello of a
                // cluster that boots at once was n² tables of n entries (most of the 1,000-node
                // simulation's time).
                if digest != Some(self.digest) {
                    self.announce_to(from, effects);
                }
            }
            Control::Digest { digest } => {
                if sender.is_none() && !self.config.authenticated {
                    return reject(from, Rejection::UnknownSender, effects);
                }
                // Once per sender per period, like the answers to tables.
                if digest != self.digest && self.answered.insert(from.clone()) {
                    self.announce_to(from, effects);
                }
            }
            Control::Left => match sender {
                Some(id) if id != self.id => {
                    self.remove(id);
                    self.tombstone(id);
                    effects.push(Effect::Change(Membership::Left(id)));
                }
                _ => reject(from, Rejection::UnknownSender, effects),
            },
            // A late duplicate of this node's own welcome, or a stray refusal.
            Control::Welcome { .. } | Control::Refused { .. } => {
                reject(from, Rejection::Unexpected, effects)
            }
        }
    }

    fn on_join(&mut self, joiner: &A, claim: Option<NodeId>, effects: &mut Vec<Effect<A>>) {
        if self.id_of(joiner).is_none() {
            let refusal = if self.slot().is_none() {
                Some(Refusal::NotAnAdmitter)
            } else if self.addrs.len() >= self.config.max_members {
                Some(Refusal::Full {
                    max: u32::try_from(self.config.max_members).unwrap_or(u32::MAX),
                })
            } else if self.next_id().is_none() {
                Some(Refusal::IdsExhausted { highest: self.base })
            } else {
                None
            };
            if let Some(reason) = refusal {
                let admitters = self
                    .addrs
                    .iter()
                    .filter(|(id, a)| id.0 < SLOTS && **a != *joiner)
                    .map(|(_, a)| a.clone())
                    .collect();
                effects.push(Effect::Send {
                    to: joiner.clone(),
                    msg: Control::Refused { reason, admitters },
                });
                return;
            }
            // A process's own claim wins over a fresh id (module doc); a fresh one is durable
            // before the welcome that hands it out.
            let id = match claim.filter(|&c| self.claimable(c)) {
                Some(claimed) => claimed,
                None => {
                    let Some(id) = self.next_id() else { return };
                    effects.push(Effect::PersistAssigned(id));
                    id
                }
            };
            self.insert(id, joiner.clone());
            // The joiner has its table before anyone (its admitter's protocol included) talks
            // to it.
            self.welcome(joiner, effects);
            self.send_all(
                Control::Announce {
                    members: vec![(id, joiner.clone())],
                },
                Some(joiner),
                effects,
            );
            effects.push(Effect::Change(Membership::Joined(id)));
            return;
        }
        // A known joiner (a retry whose welcome was lost) gets its table again.
        self.welcome(joiner, effects);
    }

    /// Whether a joiner at an unknown address may keep id `claimed`: a joiner's id (not a
    /// config line's) that no other address holds here and that did not leave.
    fn claimable(&self, claimed: NodeId) -> bool {
        claimed.0 >= SLOTS
            && !self.addrs.contains_key(&claimed)
            && !self.tombstones.contains(&claimed)
    }

    fn welcome(&self, joiner: &A, effects: &mut Vec<Effect<A>>) {
        effects.push(Effect::Send {
            to: joiner.clone(),
            msg: Control::Welcome {
                members: self.entries(),
            },
        });
    }

    /// Takes one announced entry, or rejects it.
    fn learn(&mut self, from: &A, id: NodeId, addr: A, effects: &mut Vec<Effect<A>>) {
        if let Some(held) = self.addrs.get(&id) {
            if *held != addr {
                reject(from, Rejection::Conflict, effects);
            }
            return;
        }
        if addr == self.me || id == self.id {
            return reject(from, Rejection::Conflict, effects);
        }
        let mut replaced = None;
        if let Some(old) = self.id_of(&addr) {
            if old > id {
                return; // an older incarnation of a member that rejoined since
            }
            replaced = Some(old);
        }
        if replaced.is_none() && self.addrs.len() >= self.config.max_members {
            return reject(from, Rejection::Full, effects);
        }
        if let Some(old) = replaced {
            self.remove(old);
            self.tombstone(old);
            effects.push(Effect::Change(Membership::Left(old)));
        }
        self.tombstones.remove(&id);
        self.insert(id, addr);
        effects.push(Effect::Change(Membership::Joined(id)));
    }

    fn insert(&mut self, id: NodeId, addr: A) {
        self.digest ^= entry_digest(id, &addr);
        self.members.insert(id);
        self.ids.insert(addr.clone(), id);
        self.addrs.insert(id, addr);
        self.base = self.base.max(id);
    }

    fn remove(&mut self, id: NodeId) {
        if let Some(addr) = self.addrs.remove(&id) {
            self.digest ^= entry_digest(id, &addr);
            self.ids.remove(&addr);
        }
        self.members.remove(id);
    }

    /// Remembers a departed id, forgetting the oldest (lowest) beyond the table cap.
    fn tombstone(&mut self, id: NodeId) {
        self.tombstones.insert(id);
        while self.tombstones.len() > self.config.max_members {
            self.tombstones.pop_first();
        }
    }

    fn send_all(&self, msg: Control<A>, except: Option<&A>, effects: &mut Vec<Effect<A>>) {
        for to in self.others().filter(|a| Some(*a) != except) {
            effects.push(Effect::Send {
                to: to.clone(),
                msg: msg.clone(),
            });
        }
    }
}

fn reject<A: Clone>(from: &A, why: Rejection, effects: &mut Vec<Effect<A>>) {
    effects.push(Effect::Rejected {
        from: from.clone(),
        why,
    });
}

/// A node asking to join: it sends [`Control::Join`] to the member it was given — or, once
/// that member redirects it, to the first admitter named — until a welcome or a final refusal
/// arrives, or every try is used.
#[derive(Clone, Debug)]
pub struct Joining<A> {
    me: A,
    config: ViewConfig,
    /// Members it may ask (the one named first; admitters named by a refusal after it).
    targets: Vec<A>,
    next: usize,
    /// Set once a member redirected this joiner to the admitters: from then on every request
    /// goes to the one admitter asked first. Moving on after an unanswered request could get
    /// two ids (the first admitter may have assigned one and lost its welcome); an admitter
    /// answers a joiner it admitted already with the same id, so asking it again is safe.
    settled: bool,
    tries: u32,
    max_tries: u32,
    /// The id an earlier welcome gave this process, sent with every request.
    claim: Option<NodeId>,
}

impl<A: Clone + Ord + Debug + Serialize> Joining<A> {
    /// Joins through `member`, with at most `max_tries` requests.
    pub fn new(me: A, member: A, max_tries: u32, config: ViewConfig) -> Self {
        Joining {
            me,
            config,
            targets: vec![member],
            next: 0,
            settled: false,
            tries: 0,
            max_tries,
            claim: None,
        }
    }

    /// Claims `id`, the [`View::id`] an earlier welcome gave this process (the driver persists
    /// it), so that an admitter that has not heard of this process yet lets it in under that id
    /// instead of a second one.
    pub fn claiming(mut self, id: Option<NodeId>) -> Self {
        self.claim = id;
        self
    }

    /// The next request to send (call it once per retry period), or the error once every try
    /// went unanswered.
    pub fn request(&mut self) -> Result<(A, Control<A>), JoinError> {
        if self.tries >= self.max_tries {
            return Err(JoinError::NoAnswer { tries: self.tries });
        }
        self.tries += 1;
        let to = self.targets[self.next % self.targets.len()].clone();
        if !self.settled {
            self.next += 1;
        }
        Ok((to, Control::Join { claim: self.claim }))
    }

    /// Whether `addr` is a member this joiner asked (replies from anyone else are ignored).
    pub fn asked(&self, addr: &A) -> bool {
        self.targets.contains(addr)
    }

    /// A reply from `from`: the table on a welcome, an error on a final refusal, `None` to keep
    /// trying (a redirect to admitters, or a message that is not a reply to this join).
    pub fn on_reply(&mut self, from: &A, msg: Control<A>) -> Option<Result<View<A>, JoinError>> {
        if !self.asked(from) {
            return None;
        }
        match msg {
            Control::Welcome { members } => {
                Some(View::build(&members, &self.me, self.config).map_err(JoinError::BadWelcome))
            }
            Control::Refused {
                reason: Refusal::NotAnAdmitter,
                admitters,
            } => {
                let cap = self.config.max_members;
                for a in admitters {
                    if a != self.me && !self.targets.contains(&a) && self.targets.len() < cap {
                        self.targets.push(a);
                    }
                }
                // Ask the first admitter named, and only it, from now on (see `settled`).
                if !self.settled {
                    if let Some(at) = self.targets.iter().position(|t| t != from) {
                        self.next = at;
                        self.settled = true;
                    }
                }
                None
            }
            Control::Refused { reason, .. } => Some(Err(JoinError::Refused(reason))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const CONFIG: ViewConfig = ViewConfig {
        max_members: 64,
        authenticated: true,
    };

    /// Addresses in tests: "a0", "a1", … for config lines, "j0", … for joiners.
    type Addr = String;

    fn lines(n: usize) -> Vec<Addr> {
        (0..n).map(|i| format!("a{i}")).collect()
    }

    fn sends(effects: &[Effect<Addr>]) -> Vec<(Addr, Control<Addr>)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send { to, msg } => Some((to.clone(), msg.clone())),
                _ => None,
            })
            .collect()
    }

    /// `effects` re-admit `id` (at `addr`) and send it the whole table of `view`.
    fn rejoined_and_told_the_table(
        view: &View<Addr>,
        addr: &Addr,
        id: NodeId,
        effects: &[Effect<Addr>],
    ) {
        assert_eq!(effects[0], Effect::Change(Membership::Joined(id)));
        assert_eq!(
            sends(&effects[1..]),
            vec![(
                addr.clone(),
                Control::Announce {
                    members: view.entries()
                }
            )]
        );
    }

    /// A pure network of views and joiners: messages wait in a bag and are delivered in an
    /// order drawn from the seed, so racing joins interleave every which way.
    struct Net {
        views: BTreeMap<Addr, View<Addr>>,
        joining: BTreeMap<Addr, Joining<Addr>>,
        joined: BTreeMap<Addr, Result<NodeId, JoinError>>,
        bag: Vec<(Addr, Addr, Control<Addr>)>,
        persisted: BTreeMap<Addr, NodeId>,
        rng: ChaCha8Rng,
    }

    impl Net {
        fn new(n: usize, seed: u64) -> Net {
            let all = lines(n);
            let views = all
                .iter()
                .map(|a| (a.clone(), View::from_config(&all, a, None, CONFIG).unwrap()))
                .collect();
            Net {
                views,
                joining: BTreeMap::new(),
                joined: BTreeMap::new(),
                bag: Vec::new(),
                persisted: BTreeMap::new(),
                rng: ChaCha8Rng::seed_from_u64(seed),
            }
        }

        fn carry(&mut self, from: &Addr, effects: Vec<Effect<Addr>>) {
            for effect in effects {
                match effect {
                    Effect::Send { to, msg } => self.bag.push((from.clone(), to, msg)),
                    Effect::PersistAssigned(id) => {
                        self.persisted.insert(from.clone(), id);
                    }
                    Effect::Change(_) | Effect::Rejected { .. } => {}
                }
            }
        }

        fn join(&mut self, joiner: &str, through: &str) {
            let mut j = Joining::new(joiner.to_string(), through.to_string(), 5, CONFIG);
            let (to, msg) = j.request().unwrap();
            self.bag.push((joiner.to_string(), to, msg));
            self.joining.insert(joiner.to_string(), j);
        }

        /// Delivers one random message; false when none is left.
        fn step(&mut self) -> bool {
            if self.bag.is_empty() {
                return false;
            }
            let at = self.rng.next_u64() as usize % self.bag.len();
            let (from, to, msg) = self.bag.swap_remove(at);
            if let Some(j) = self.joining.get_mut(&to) {
                let redirect = matches!(msg, Control::Refused { .. });
                match j.on_reply(&from, msg) {
                    Some(Ok(view)) => {
                        self.joined.insert(to.clone(), Ok(view.id()));
                        self.joining.remove(&to);
                        let mut effects = Vec::new();
                        view.announce(&mut effects);
                        self.views.insert(to.clone(), view);
                        self.carry(&to, effects);
                    }
                    Some(Err(e)) => {
                        self.joined.insert(to.clone(), Err(e));
                        self.joining.remove(&to);
                    }
                    None if redirect => {
                        if let Ok((next, msg)) = j.request() {
                            self.bag.push((to, next, msg));
                        }
                    }
                    None => {}
                }
            } else if let Some(view) = self.views.get_mut(&to) {
                let mut effects = Vec::new();
                view.on_control(&from, msg, &mut effects);
                self.carry(&to, effects);
            }
            true
        }

        fn tick_all(&mut self) {
            let addrs: Vec<Addr> = self.views.keys().cloned().collect();
            for a in addrs {
                let mut effects = Vec::new();
                self.views
                    .get_mut(&a)
                    .expect("listed")
                    .on_tick(&mut self.rng, &mut effects);
                self.carry(&a, effects);
            }
        }

        fn settle(&mut self) {
            for _ in 0..100 {
                while self.step() {}
                self.tick_all();
            }
            while self.step() {}
        }
    }

    /// The invariant: every id is held at one address, in every table at once.
    fn assert_unique_ids(net: &Net) {
        let mut owner: BTreeMap<NodeId, Addr> = BTreeMap::new();
        for view in net.views.values() {
            for (id, addr) in view.entries() {
                let held = owner.entry(id).or_insert_with(|| addr.clone());
                assert_eq!(*held, addr, "{id} held by {held} and {addr}");
            }
        }
    }

    #[test]
    fn racing_joins_through_different_members_get_distinct_ids_above_everyone() {
        for seed in 0..200 {
            let mut net = Net::new(5, seed);
            // Three joiners at the same instant, through three different members, one of them
            // through a non-admitter after the first join (below).
            net.join("j0", "a0");
            net.join("j1", "a3");
            net.join("j2", "a4");
            net.settle();
            net.join("j3", "j0"); // j0 is no admitter: it redirects
            net.join("j4", "a0");
            net.settle();
            let ids: Vec<NodeId> = ["j0", "j1", "j2", "j3", "j4"]
                .iter()
                .map(|j| net.joined[*j].clone().unwrap())
                .collect();
            let distinct: BTreeSet<NodeId> = ids.iter().copied().collect();
            assert_eq!(distinct.len(), ids.len(), "seed {seed}: {ids:?}");
            assert!(
                ids.iter().all(|id| id.0 >= SLOTS),
                "joiners outrank config ids: {ids:?}"
            );
            // Joiners of the second wave outrank the whole first wave.
            assert!(ids[3] > ids[..3].iter().copied().max().unwrap(), "{ids:?}");
            assert!(ids[4] > ids[..3].iter().copied().max().unwrap(), "{ids:?}");
            assert_unique_ids(&net);
            // Gossip converged: every table has all ten.
            for view in net.views.values() {
                assert_eq!(view.members().len(), 10, "seed {seed}");
            }
        }
    }

    /// The rule the module replaces — "one more than the highest id seen" — fails the same test:
    /// the harness catches a duplicate.
    #[test]
    #[should_panic(expected = "held by")]
    fn the_old_highest_plus_one_rule_is_caught() {
        let mut net = Net::new(3, 1);
        // Emulate two admitters that both pick highest_seen + 1 = 3.
        for (joiner, admitter) in [("j0", "a0"), ("j1", "a1")] {
            let view = net.views.get_mut(admitter).unwrap();
            view.insert(NodeId(3), joiner.to_string());
            let mut effects = Vec::new();
            view.send_all(
                Control::Announce {
                    members: vec![(NodeId(3), joiner.to_string())],
                },
                None,
                &mut effects,
            );
            net.carry(&admitter.to_string(), effects);
        }
        net.settle();
        assert_unique_ids(&net);
    }

    #[test]
    fn an_admitter_never_reuses_an_id_after_a_restart() {
        let all = lines(3);
        let mut a0 = View::from_config(&all, &all[0], None, CONFIG).unwrap();
        let mut effects = Vec::new();
        a0.on_control(
            &"j0".to_string(),
            Control::Join { claim: None },
            &mut effects,
        );
        let assigned = effects
            .iter()
            .find_map(|e| match e {
                Effect::PersistAssigned(id) => Some(*id),
                _ => None,
            })
            .unwrap();
        assert_eq!(assigned, NodeId(SLOTS));
        // Persist comes before the welcome leaves.
        let persist_at = effects
            .iter()
            .position(|e| matches!(e, Effect::PersistAssigned(_)))
            .unwrap();
        let welcome_at = effects
            .iter()
            .position(|e| {
                matches!(
                    e,
                    Effect::Send {
                        msg: Control::Welcome { .. },
                        ..
                    }
                )
            })
            .unwrap();
        assert!(persist_at < welcome_at);
        let reborn = View::from_config(&all, &all[0], Some(assigned), CONFIG).unwrap();
        assert_eq!(reborn.next_id(), Some(NodeId(2 * SLOTS)));
        let forgetful = View::from_config(&all, &all[0], None, CONFIG).unwrap();
        assert_eq!(
            forgetful.next_id(),
            Some(assigned),
            "the broken variant reuses"
        );
    }

    #[test]
    fn ids_near_the_top_are_refused_not_wrapped() {
        let all = lines(2);
        let mut a1 = View::from_config(&all, &all[1], None, CONFIG).unwrap();
        let mut effects = Vec::new();
        // An authenticated member announces a huge id: learned, and the next join is refused.
        a1.on_control(
            &all[0],
            Control::Announce {
                members: vec![(NodeId(u32::MAX), "big".to_string())],
            },
            &mut effects,
        );
        assert!(a1.members().contains(NodeId(u32::MAX)));
        effects.clear();
        a1.on_control(
            &"j".to_string(),
            Control::Join { claim: None },
            &mut effects,
        );
        assert_eq!(
            sends(&effects),
            vec![(
                "j".to_string(),
                Control::Refused {
                    reason: Refusal::IdsExhausted {
                        highest: NodeId(u32::MAX)
                    },
                    admitters: all.clone(),
                }
            )]
        );
        assert!(!a1.members().contains(NodeId(u32::MAX - 1)));
    }

    #[test]
    fn strangers_cannot_add_members_without_authentication() {
        let all = lines(2);
        let open = ViewConfig {
            authenticated: false,
            ..CONFIG
        };
        let mut a0 = View::from_config(&all, &all[0], None, open).unwrap();
        let mut effects = Vec::new();
        let fake = "fake".to_string();
        a0.on_control(
            &fake,
            Control::Announce {
                members: vec![(NodeId(4_000_000_000), fake.clone())],
            },
            &mut effects,
        );
        a0.on_control(
            &fake,
            Control::Hello {
                id: NodeId(7),
                digest: None,
            },
            &mut effects,
        );
        a0.on_control(&fake, Control::Left, &mut effects);
        assert_eq!(a0.members().len(), 2);
        assert_eq!(
            effects,
            vec![
                Effect::Rejected {
                    from: fake.clone(),
                    why: Rejection::UnknownSender
                },
                Effect::Rejected {
                    from: fake.clone(),
                    why: Rejection::Unexpected
                },
                Effect::Rejected {
                    from: fake,
                    why: Rejection::UnknownSender
                },
            ]
        );
    }

    #[test]
    fn the_table_is_capped_and_full_clusters_refuse_joins() {
        let small = ViewConfig {
            max_members: 3,
            ..CONFIG
        };
        let all = lines(2);
        let mut a0 = View::from_config(&all, &all[0], None, small).unwrap();
        let mut effects = Vec::new();
        a0.on_control(
            &"j0".to_string(),
            Control::Join { claim: None },
            &mut effects,
        );
        effects.clear();
        a0.on_control(
            &"j1".to_string(),
            Control::Join { claim: None },
            &mut effects,
        );
        assert!(matches!(
            &sends(&effects)[..],
            [(
                _,
                Control::Refused {
                    reason: Refusal::Full { max: 3 },
                    ..
                }
            )]
        ));
        effects.clear();
        a0.on_control(
            &all[1],
            Control::Announce {
                members: vec![(NodeId(5000), "x".to_string())],
            },
            &mut effects,
        );
        assert_eq!(a0.members().len(), 3);
        assert!(effects.contains(&Effect::Rejected {
            from: all[1].clone(),
            why: Rejection::Full
        }));
        assert!(View::from_config(&lines(4), &"a0".to_string(), None, small).is_err());
    }

    #[test]
    fn a_leave_sticks_but_the_member_itself_can_come_back() {
        let all = lines(3);
        let mut a0 = View::from_config(&all, &all[0], None, CONFIG).unwrap();
        let mut effects = Vec::new();
        a0.on_control(&all[2], Control::Left, &mut effects);
        assert_eq!(effects, vec![Effect::Change(Membership::Left(NodeId(2)))]);
        effects.clear();
        // A member that missed the leave re-announces its table: the leaver stays out.
        a0.on_control(
            &all[1],
            Control::Announce {
                members: a0
                    .entries()
                    .into_iter()
                    .chain([(NodeId(2), all[2].clone())])
                    .collect(),
            },
            &mut effects,
        );
        assert!(!a0.members().contains(NodeId(2)));
        // The leaver itself announces (it was removed by mistake, or rebooted): back in.
        a0.on_control(
            &all[2],
            Control::Announce {
                members: vec![(NodeId(2), all[2].clone())],
            },
            &mut effects,
        );
        // Back in, and told the table (it is a member this view just learned).
        rejoined_and_told_the_table(&a0, &all[2], NodeId(2), &effects);
    }

    #[test]
    fn a_table_lacking_members_is_answered_once_per_period() {
        let all = lines(3);
        let mut a0 = View::from_config(&all, &all[0], None, CONFIG).unwrap();
        let mut effects = Vec::new();
        // A joiner's whole table, without a2: answered with a0's.
        let theirs = vec![
            (NodeId(0), all[0].clone()),
            (NodeId(1), all[1].clone()),
            (NodeId(SLOTS), "j".to_string()),
        ];
        let from = "j".to_string();
        a0.on_control(
            &from,
            Control::Announce {
                members: theirs.clone(),
            },
            &mut effects,
        );
        let answer = (
            from.clone(),
            Control::Announce {
                members: a0.entries(),
            },
        );
        assert_eq!(sends(&effects), vec![answer.clone()]);
        // Again within the period: no answer (two tables that cannot agree do not ping-pong).
        effects.clear();
        a0.on_control(
            &from,
            Control::Announce {
                members: theirs.clone(),
            },
            &mut effects,
        );
        assert_eq!(sends(&effects), vec![]);
        // After a tick, answered again; a table that lacks nothing is never answered.
        a0.on_tick(&mut ChaCha8Rng::seed_from_u64(1), &mut effects);
        effects.clear();
        a0.on_control(&from, Control::Announce { members: theirs }, &mut effects);
        assert_eq!(sends(&effects), vec![answer]);
        effects.clear();
        a0.on_control(
            &from,
            Control::Announce {
                members: a0.entries(),
            },
            &mut effects,
        );
        assert_eq!(sends(&effects), vec![]);
    }

    /// Invariant: the periodic message is a digest; a member answers it with its table only if
    /// the tables differ, once per sender per period.
    #[test]
    fn a_differing_digest_is_answered_with_the_table_once_per_period() {
        let all = lines(3);
        let mut a0 = View::from_config(&all, &all[0], None, CONFIG).unwrap();
        let mut a1 = View::from_config(&all, &all[1], None, CONFIG).unwrap();
        let mut effects = Vec::new();
        a1.on_tick(&mut ChaCha8Rng::seed_from_u64(1), &mut effects);
        let [(_, digest)] = sends(&effects)[..].to_owned().try_into().unwrap();
        assert_eq!(
            digest,
            Control::Digest {
                digest: a1.digest()
            }
        );
        effects.clear();
        a0.on_control(&all[1], digest.clone(), &mut effects);
        assert_eq!(sends(&effects), vec![], "same table, no answer");
        a0.on_control(
            &"j".to_string(),
            Control::Join { claim: None },
            &mut effects,
        );
        effects.clear();
        a0.on_control(&all[1], digest.clone(), &mut effects);
        let table = Control::Announce {
            members: a0.entries(),
        };
        assert_eq!(sends(&effects), vec![(all[1].clone(), table.clone())]);
        effects.clear();
        a0.on_control(&all[1], digest.clone(), &mut effects);
        assert_eq!(sends(&effects), vec![], "once per period");
        a0.on_tick(&mut ChaCha8Rng::seed_from_u64(1), &mut effects);
        effects.clear();
        a0.on_control(&all[1], digest, &mut effects);
        assert_eq!(sends(&effects), vec![(all[1].clone(), table.clone())]);
        // The answer brings a1 the joiner.
        a1.on_control(&all[0], table, &mut effects);
        assert_eq!(a1.digest(), a0.digest());
    }

    #[test]
    fn conflicting_entries_are_rejected_and_rejoins_replace_the_old_id() {
        let all = lines(3);
        let mut a0 = View::from_config(&all, &all[0], None, CONFIG).unwrap();
        let mut effects = Vec::new();
        let claims = vec![
            (NodeId(1), "elsewhere".to_string()), // id 1 is at a1
            (NodeId(9), all[0].clone()),          // my address
            (NodeId(0), "me-too".to_string()),    // my id
        ];
        a0.on_control(&all[1], Control::Announce { members: claims }, &mut effects);
        assert_eq!(
            effects,
            vec![
                Effect::Rejected {
                    from: all[1].clone(),
                    why: Rejection::Conflict
                };
                3
            ]
        );
        effects.clear();
        a0.on_control(
            &all[1],
            Control::Announce {
                members: vec![(NodeId(SLOTS + 2), all[2].clone())],
            },
            &mut effects,
        );
        assert_eq!(
            effects,
            vec![
                Effect::Change(Membership::Left(NodeId(2))),
                Effect::Change(Membership::Joined(NodeId(SLOTS + 2))),
                // The member just learned gets this table.
                Effect::Send {
                    to: all[2].clone(),
                    msg: Control::Announce {
                        members: a0.entries()
                    }
                },
            ]
        );
        assert_eq!(a0.id_of(&all[2]), Some(NodeId(SLOTS + 2)));
    }

    #[test]
    fn joiners_follow_redirects_and_report_refusals_and_silence() {
        let all = lines(2);
        let mut j = Joining::new("j".to_string(), "x".to_string(), 4, CONFIG);
        assert_eq!(j.request().unwrap().0, "x");
        assert!(
            j.on_reply(
                &"x".to_string(),
                Control::Refused {
                    reason: Refusal::NotAnAdmitter,
                    admitters: all.clone(),
                },
            )
            .is_none()
        );
        // After the redirect only the first admitter is asked, again and again: a second one
        // could assign a second id while the first one's welcome is lost.
        assert_eq!(j.request().unwrap().0, "a0");
        assert_eq!(j.request().unwrap().0, "a0");
        // A stranger's refusal is ignored; an admitter's is final.
        assert!(
            j.on_reply(
                &"z".to_string(),
                Control::Refused {
                    reason: Refusal::Full { max: 1 },
                    admitters: vec![]
                }
            )
            .is_none()
        );
        let err = j
            .on_reply(
                &"a0".to_string(),
                Control::Refused {
                    reason: Refusal::Full { max: 1 },
                    admitters: vec![],
                },
            )
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("full"), "{err}");
        assert!(j.request().is_ok());
        assert!(matches!(j.request(), Err(JoinError::NoAnswer { tries: 4 })));
        // A welcome that does not list the joiner is an error, not a table.
        let mut k = Joining::new("k".to_string(), "a0".to_string(), 1, CONFIG);
        let bad = k.on_reply(
            &"a0".to_string(),
            Control::Welcome {
                members: vec![(NodeId(0), "a0".to_string())],
            },
        );
        assert_eq!(
            bad.unwrap().unwrap_err(),
            JoinError::BadWelcome(ViewError::NotListed)
        );
    }

    #[test]
    fn a_booting_config_node_is_recognised_by_its_line_only() {
        let all = lines(3);
        let open = ViewConfig {
            authenticated: false,
            ..CONFIG
        };
        let mut a0 = View::from_config(&all, &all[0], None, open).unwrap();
        let mut effects = Vec::new();
        a0.on_control(&all[2], Control::Left, &mut effects);
        effects.clear();
        // A rebooted node whose table is a0's (the config's) is re-admitted and sent no table (a
        // whole cluster booting at once would send n² tables).
        let config = View::from_config(&all, &all[2], None, open)
            .unwrap()
            .digest();
        let hello = Control::Hello {
            id: NodeId(2),
            digest: Some(config),
        };
        a0.on_control(&all[2], hello.clone(), &mut effects);
        assert_eq!(effects, vec![Effect::Change(Membership::Joined(NodeId(2)))]);
        assert_eq!(
            config,
            a0.digest(),
            "same entries (a2 learned again), same digest"
        );
        // Once a0 holds a joiner the rebooted node lacks, or without a digest (an older sender),
        // the rebooted node is told the whole table at once.
        let joiner = "j".to_string();
        a0.on_control(&joiner, Control::Join { claim: None }, &mut effects);
        assert!(a0.id_of(&joiner).is_some(), "{effects:?}");
        assert_ne!(a0.digest(), config);
        for hello in [
            hello,
            Control::Hello {
                id: NodeId(2),
                digest: None,
            },
        ] {
            a0.on_control(&all[2], Control::Left, &mut effects);
            effects.clear();
            a0.on_control(&all[2], hello, &mut effects);
            rejoined_and_told_the_table(&a0, &all[2], NodeId(2), &effects);
        }
        effects.clear();
        a0.on_control(
            &all[1],
            Control::Hello {
                id: NodeId(2),
                digest: None,
            },
            &mut effects,
        );
        assert_eq!(
            effects,
            vec![Effect::Rejected {
                from: all[1].clone(),
                why: Rejection::Unexpected
            }]
        );
    }
}
