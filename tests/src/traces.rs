//! Simulated runs traced into memory and read back as `election-view` runs, for the tests of the
//! pictures; and a broken Invitation whose runs end in a violation.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use election_core::invitation::Invitation;
use election_core::{
    Command, ConfigError, Context, Membership, NodeId, Out, Protocol, State, Status,
};
use election_sim::{Outcome, Sim, Spec, TraceSink};
use election_view::{ReadOptions, Run, read_sim_trace};

/// A writer the test can read back after the simulator is done with it.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `spec` with protocol `P`, tracing into memory: the trace's bytes and the outcome.
pub fn trace_of<P: Protocol>(spec: Spec) -> (Vec<u8>, Outcome) {
    let buf = Shared::default();
    let sink = TraceSink::new(Box::new(buf.clone()));
    let outcome = Sim::<P>::new(spec, Some(sink)).expect("a valid spec").run();
    let bytes = buf.0.borrow().clone();
    (bytes, outcome)
}

/// Runs `spec` with the registered algorithm it names and reads the trace back.
pub fn run_of(spec: Spec) -> (Run, Outcome) {
    let algorithm = spec.algorithm().expect("a registered algorithm");
    let (bytes, outcome) = election_core::with_protocol!(algorithm, P => trace_of::<P>(spec));
    let run = read_sim_trace(bytes.as_slice(), &ReadOptions::default())
        .unwrap_or_else(|e| panic!("the simulator's own trace does not read: {e}"));
    (run, outcome)
}

/// Invitation, except that node 1 calls itself the coordinator of any group it is `Normal` in:
/// once it joins another node's group, two members of one group follow different coordinators
/// (Garcia-Molina's Assertion 1) and the group has two leaders.
pub struct UsurpingInvitation {
    inner: Invitation,
    me: NodeId,
}

impl Protocol for UsurpingInvitation {
    const NAME: &'static str = "invitation";
    type Config = <Invitation as Protocol>::Config;
    type Msg = <Invitation as Protocol>::Msg;
    type Timer = <Invitation as Protocol>::Timer;

    fn new(config: Self::Config) -> Result<Self, ConfigError> {
        Ok(UsurpingInvitation {
            inner: Invitation::new(config)?,
            me: NodeId(0),
        })
    }

    fn on_start(&mut self, cx: &mut Context<'_>, persisted: Option<&[u8]>, out: &mut Out<Self>) {
        self.me = cx.id;
        let mut inner = Out::new();
        self.inner.on_start(cx, persisted, &mut inner);
        forward(inner, out);
    }

    fn on_message(
        &mut self,
        cx: &mut Context<'_>,
        from: NodeId,
        msg: Self::Msg,
        out: &mut Out<Self>,
    ) {
        let mut inner = Out::new();
        self.inner.on_message(cx, from, msg, &mut inner);
        forward(inner, out);
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, timer: Self::Timer, out: &mut Out<Self>) {
        let mut inner = Out::new();
        self.inner.on_timer(cx, timer, &mut inner);
        forward(inner, out);
    }

    fn on_membership(&mut self, cx: &mut Context<'_>, change: Membership, out: &mut Out<Self>) {
        let mut inner = Out::new();
        self.inner.on_membership(cx, change, &mut inner);
        forward(inner, out);
    }

    fn status(&self) -> Status {
        let mut status = self.inner.status();
        if self.me == NodeId(1) && status.state == State::Normal {
            status.coordinator = Some(self.me);
            status.phase = "Usurper";
        }
        status
    }
}

/// Re-issues the inner protocol's commands (the types are the same, only `Out`'s parameter
/// differs).
fn forward(mut inner: Out<Invitation>, out: &mut Out<UsurpingInvitation>) {
    for c in inner.drain() {
        match c {
            Command::Send { to, msg } => out.send(to, msg),
            Command::Broadcast { msg } => out.broadcast(msg),
            Command::SetTimer { timer, after } => out.set_timer(timer, after),
            Command::CancelTimer(timer) => out.cancel_timer(timer),
            Command::Persist(bytes) => out.persist(bytes),
            Command::StatusChanged(_) => {}
        }
    }
}
