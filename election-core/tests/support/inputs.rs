//! Arbitrary input sequences fed to one node, for the "any input is handled" property tests.

use election_core::{
    ConfigOf, Context, Input, InputOf, MILLIS, Members, Membership, Node, NodeId, Out, Protocol,
    Status,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The node under test, in a view of `n0 … n4`.
pub const ME: NodeId = NodeId(2);

/// An arbitrary input to [`ME`]: a `msg` from any member (itself included, as a forged datagram
/// would claim), a `timer`, or any member's leave.
pub fn any_input<P: Protocol>(
    msg: impl Strategy<Value = P::Msg>,
    timer: impl Strategy<Value = P::Timer>,
) -> impl Strategy<Value = InputOf<P>> {
    prop_oneof![
        (0u32..5, msg).prop_map(|(from, msg)| Input::Message {
            from: NodeId(from),
            msg,
        }),
        timer.prop_map(Input::Timer),
        (0u32..5).prop_map(|id| Input::Membership(Membership::Left(NodeId(id)))),
    ]
}

/// Boots [`ME`] with `persisted`, then hands it `inputs` a millisecond apart (a leave takes the
/// member out of the view; its own leave is skipped, a stopped node gets no input). `check` sees
/// the status and the view after the start (`None`) and after each input.
pub fn feed<P: Protocol>(
    config: &ConfigOf<P>,
    persisted: Option<Vec<u8>>,
    inputs: Vec<InputOf<P>>,
    mut check: impl FnMut(Option<&InputOf<P>>, &Status, &Members) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let mut members = Members::first(5);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut node = Node::new(P::new(config));
    let mut out = Out::new();
    let mut now = 0;
    let start = Input::Start { persisted };
    let mut cx = Context {
        id: ME,
        now,
        members: &members,
        rng: &mut rng,
    };
    node.handle(&mut cx, start, &mut out);
    out.drain();
    check(None, node.status(), &members)?;
    for input in inputs {
        now += MILLIS;
        if let Input::Membership(Membership::Left(gone)) = input {
            if gone == ME {
                continue;
            }
            members.remove(gone);
        }
        let mut cx = Context {
            id: ME,
            now,
            members: &members,
            rng: &mut rng,
        };
        node.handle(&mut cx, input.clone(), &mut out);
        out.drain();
        check(Some(&input), node.status(), &members)?;
    }
    Ok(())
}
