//! Simulated runs traced into memory and read back as `election-view` runs, for the tests of the
//! pictures; and a broken Invitation whose runs end in a violation.

use election_core::harness::{Mutant, Mutation};
use election_core::invitation::Invitation;
use election_core::{NodeId, Protocol, State, Status};
use election_sim::{Outcome, Spec};
use election_view::Run;

/// Runs `spec` with protocol `P`, tracing into memory: the trace's bytes and the outcome.
pub fn trace_of<P: Protocol>(spec: Spec) -> (Vec<u8>, Outcome) {
    election_sim::folder::trace_in_memory::<P>(spec).expect("a valid spec")
}

/// Runs `spec` with the registered algorithm it names and reads the trace back.
pub fn run_of(spec: Spec) -> (Run, Outcome) {
    let algorithm = spec.algorithm().expect("a registered algorithm");
    election_core::with_protocol!(algorithm, P => election_sim::folder::traced::<P>(spec))
        .unwrap_or_else(|e| panic!("{e}"))
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
