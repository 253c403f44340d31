//! The checkers catch broken variants: a Bully whose node 0 crowns itself without an election,
//! the first version's Halt rule (in the synchronous mode), and a ring claiming Assertion 1.

use election_core::bully::{Bully, BullyConfig, Msg, Timer};
use election_core::ring::{self, Ring, RingConfig};
use election_core::{
    Context, Membership, NodeId, Out, OutOf, Properties, Protocol, Scope, State, Status, Time,
};
use election_sim::{Invariant, Plan, RandomFaults, Sim, Spec, Violation};

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

/// The first violation over `seeds` synchronous-mode seeds of `P` with `options`, as
/// `election sim check --synchronous` would find it.
fn first_synchronous_violation<P: Protocol>(
    options: &[(&str, &str)],
    nodes: u32,
    seeds: u64,
) -> Option<Violation> {
    (0..seeds).find_map(|seed| {
        let mut spec = Spec::new(P::NAME, nodes, seed, Plan::calm());
        spec.options = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config = spec.config::<P>().unwrap();
        spec.plan = RandomFaults::default().generate_synchronous(
            seed,
            nodes,
            config.timing,
            P::max_delay(&config),
        );
        let out = Sim::<P>::new(spec, None).unwrap().run();
        assert_eq!(out.stats.left_model_at, None, "seed {seed} left the model");
        out.violation
    })
}

/// Invariant: Assertion 1 at every instant of a synchronous run. The first version's Halt rule
/// (obey any higher node) breaks it when two coordinators' Halts race; the synchronous plan mode
/// must find that with a seed to reproduce, and the default rule must pass the same seeds.
#[test]
fn the_old_halt_rule_is_caught_by_the_synchronous_mode() {
    let v = first_synchronous_violation::<Bully>(&[("halts", "any-higher")], 5, 3_000)
        .expect("the old rule is caught within 3,000 synchronous seeds");
    eprintln!(
        "caught: {v}\nreproduce: election sim run --algorithm bully -o halts=any-higher \
         --synchronous --seed {}",
        v.seed
    );
    assert_eq!(v.invariant, Invariant::Agreement, "{v}");
    assert_eq!(
        first_synchronous_violation::<Bully>(&[], 5, v.seed + 1),
        None,
        "the default rule passes the same seeds"
    );
}

/// The ring as it would be if it claimed Assertion 1: same protocol, one more property.
struct RingClaimingAssertion1(Ring);

impl Protocol for RingClaimingAssertion1 {
    const NAME: &'static str = Ring::NAME;
    type Options = <Ring as Protocol>::Options;
    type Msg = <Ring as Protocol>::Msg;
    type Timer = <Ring as Protocol>::Timer;

    fn new(config: &RingConfig) -> Self {
        RingClaimingAssertion1(Ring::new(config))
    }
    fn properties(config: &RingConfig) -> Properties {
        Properties {
            agreement: Some(Scope::Everyone),
            ..Ring::properties(config)
        }
    }
    fn liveness_bound(config: &RingConfig, n: usize) -> Time {
        Ring::liveness_bound(config, n)
    }
    fn on_start(&mut self, cx: &mut Context<'_>, p: Option<&[u8]>, out: &mut OutOf<Ring>) {
        self.0.on_start(cx, p, out);
    }
    fn on_message(&mut self, cx: &mut Context<'_>, f: NodeId, m: ring::Msg, out: &mut OutOf<Ring>) {
        self.0.on_message(cx, f, m, out);
    }
    fn on_timer(&mut self, cx: &mut Context<'_>, t: ring::Timer, out: &mut OutOf<Ring>) {
        self.0.on_timer(cx, t, out);
    }
    fn on_membership(&mut self, cx: &mut Context<'_>, c: Membership, out: &mut OutOf<Ring>) {
        self.0.on_membership(cx, c, out);
    }
    fn status(&self) -> Status {
        self.0.status()
    }
}

/// Why the ring does not claim Assertion 1 (see `election_core::ring`): with the claim, the
/// synchronous mode finds an instant where two live Normal nodes follow different leaders. What
/// the ring does claim — one leader at a time, the highest wins — passes the same seeds.
#[test]
fn the_ring_keeps_one_leader_but_not_assertion_1() {
    let v = first_synchronous_violation::<RingClaimingAssertion1>(&[], 5, 2_000)
        .expect("Assertion 1 breaks for the ring within 2,000 synchronous seeds");
    assert_eq!(v.invariant, Invariant::Agreement, "{v}");
    assert_eq!(
        first_synchronous_violation::<Ring>(&[], 5, v.seed + 1),
        None,
        "the ring's own claims hold on the same seeds"
    );
}
