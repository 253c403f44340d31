//! The checkers catch an intentionally broken variant of the real Bully: node 0 announces itself
//! coordinator at boot without holding an election (and keeps claiming it).

use election_core::bully::{Bully, BullyConfig, Msg, Timer};
use election_core::{Context, Membership, NodeId, Out, Properties, Protocol, State, Status, Time};
use election_sim::{Invariant, RandomFaults, Sim, Spec};

/// Bully, except that node 0 reports itself the `Normal` leader from boot on.
struct UsurpingBully {
    inner: Bully,
    usurper: bool,
}

impl Protocol for UsurpingBully {
    const NAME: &'static str = "bully";
    type Options = <Bully as Protocol>::Options;
    type Msg = Msg;
    type Timer = Timer;

    fn new(config: &BullyConfig) -> Self {
        UsurpingBully {
            inner: Bully::new(config),
            usurper: false,
        }
    }

    fn properties(config: &BullyConfig) -> Properties {
        Bully::properties(config)
    }

    fn liveness_bound(config: &BullyConfig, n: usize) -> Time {
        Bully::liveness_bound(config, n)
    }

    fn on_start(
        &mut self,
        cx: &mut Context<'_>,
        persisted: Option<&[u8]>,
        out: &mut Out<Msg, Timer>,
    ) {
        self.usurper = cx.id == NodeId(0);
        self.inner.on_start(cx, persisted, out);
    }

    fn on_message(
        &mut self,
        cx: &mut Context<'_>,
        from: NodeId,
        msg: Msg,
        out: &mut Out<Msg, Timer>,
    ) {
        self.inner.on_message(cx, from, msg, out);
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, timer: Timer, out: &mut Out<Msg, Timer>) {
        self.inner.on_timer(cx, timer, out);
    }

    fn on_membership(
        &mut self,
        cx: &mut Context<'_>,
        change: Membership,
        out: &mut Out<Msg, Timer>,
    ) {
        self.inner.on_membership(cx, change, out);
    }

    fn status(&self) -> Status {
        if self.usurper {
            Status {
                state: State::Normal,
                coordinator: Some(NodeId(0)),
                group: None,
                incarnation: None,
                term: None,
                phase: "Usurper",
            }
        } else {
            self.inner.status()
        }
    }
}

/// Invariant: whenever the usurper is still up at the end of a run, the run reports a violation
/// (liveness: it does not follow the real leader; or stability, if it usurped after the check).
#[test]
fn a_bully_that_crowns_itself_without_an_election_is_caught() {
    let mut caught = 0;
    for seed in 0..30 {
        let spec = Spec::new("bully", 5, seed, RandomFaults::default().generate(seed, 5));
        let mut sim = Sim::<UsurpingBully>::new(spec.clone(), None).unwrap();
        let end = sim.end_time();
        match sim.run_until(end) {
            Err(v) => {
                eprintln!("caught: {v}");
                assert_eq!(v.seed, seed);
                assert!(
                    matches!(
                        v.invariant,
                        Invariant::Liveness | Invariant::Stability | Invariant::Validity
                    ),
                    "seed {seed}: {v}"
                );
                // The real Bully passes the same run, so the violation is the usurper's doing.
                let honest = Sim::<Bully>::new(spec, None).unwrap().run();
                assert_eq!(honest.violation, None, "seed {seed}");
                caught += 1;
            }
            Ok(()) => assert_eq!(
                sim.status(0).state,
                State::Down,
                "seed {seed}: the usurper is up, yet nothing was reported"
            ),
        }
    }
    assert!(
        caught >= 15,
        "only {caught} of 30 runs had the usurper up to be caught"
    );
}
