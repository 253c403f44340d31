//! Simulated runs traced into memory and read back as `election-view` runs, for the tests of the
//! pictures; and a broken Invitation whose runs end in a violation.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use election_core::harness::{Mutant, Mutation};
use election_core::invitation::Invitation;
use election_core::{NodeId, Protocol, State, Status};
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
pub struct CoordinatesEveryGroup;

impl Mutation<Invitation> for CoordinatesEveryGroup {
    fn status(me: NodeId, mut status: Status) -> Status {
        if me == NodeId(1) && status.state == State::Normal {
            status.coordinator = Some(me);
            status.phase = "Usurper";
        }
        status
    }
}

/// The broken Invitation of [`CoordinatesEveryGroup`].
pub type UsurpingInvitation = Mutant<Invitation, CoordinatesEveryGroup>;
