//! Random fault schedules for the harness property tests: which faults a test draws is its own
//! choice (a [`Mix`]), how a fault is done to the cluster is said once here.

use election_core::harness::Cluster;
use election_core::{Protocol, Time};
use std::fmt::Debug;

use proptest::prelude::*;
use proptest::strategy::Union;

/// One drawn event: a fault done to the cluster, or a [`Step`] the test drives itself.
#[derive(Clone, Debug)]
pub enum Fault<T> {
    Crash(u32),
    Recover(u32),
    /// These members against the rest.
    Partition(Vec<u32>),
    CutOneWay(u32, u32),
    Heal,
    /// Fire this node's timer now (if it is set), as if its timeout were early.
    Fire(u32, T),
    Step(Step),
}

/// Progress the test makes itself, because it checks its invariant between the inputs.
#[derive(Clone, Debug)]
pub enum Step {
    /// Run this long.
    Run(Time),
    /// Deliver up to this many messages.
    Deliver(usize),
}

/// Which events a test draws, all equally likely.
pub struct Mix<T> {
    /// One-way link cuts.
    pub one_way: bool,
    /// Early firings of this timer (Raft's forced campaigns).
    pub fire: Option<T>,
    /// Runs are shorter than this.
    pub longest_run: Time,
    /// Deliveries are fewer than this.
    pub most_deliveries: usize,
}

/// Events among `n` members, as `mix` says.
pub fn fault<T: Clone + Debug + 'static>(n: u32, mix: Mix<T>) -> impl Strategy<Value = Fault<T>> {
    let mut arms = vec![
        (0..n).prop_map(Fault::Crash).boxed(),
        (0..n).prop_map(Fault::Recover).boxed(),
        proptest::collection::vec(0..n, 1..n as usize)
            .prop_map(Fault::Partition)
            .boxed(),
        Just(Fault::Heal).boxed(),
        (0..mix.longest_run)
            .prop_map(|t| Fault::Step(Step::Run(t)))
            .boxed(),
        (0..mix.most_deliveries)
            .prop_map(|k| Fault::Step(Step::Deliver(k)))
            .boxed(),
    ];
    if mix.one_way {
        arms.push(
            (0..n, 0..n)
                .prop_map(|(a, b)| Fault::CutOneWay(a, b))
                .boxed(),
        );
    }
    if let Some(timer) = mix.fire {
        arms.push(
            (0..n)
                .prop_map(move |id| Fault::Fire(id, timer.clone()))
                .boxed(),
        );
    }
    Union::new(arms)
}

impl Step {
    /// Does the step to `c`, calling `check` after every delivery and after every `slice` of
    /// running (`Time::MAX`: once, at the end); the first error ends it.
    pub fn drive<P: Protocol>(
        self,
        c: &mut Cluster<P>,
        slice: Time,
        mut check: impl FnMut(&Cluster<P>) -> Result<(), String>,
    ) -> Result<(), String> {
        match self {
            Step::Run(t) => {
                let end = c.now() + t;
                while c.now() < end {
                    let before = c.now();
                    c.run_for((end - before).min(slice));
                    check(c)?;
                }
            }
            Step::Deliver(k) => {
                for _ in 0..k {
                    if c.deliver_next().is_none() {
                        break;
                    }
                    check(c)?;
                }
            }
        }
        Ok(())
    }
}

/// Starts every node of `c`, does `faults` (calling `check` as [`Step::drive`] does, and after
/// each fault), then brings node 0 up if none is, heals and runs `liveness_bound`: the highest
/// live node must then lead every live node, all Normal (the algorithms that elect the highest
/// candidate, whatever came before).
#[allow(dead_code)] // Raft's tests drive their steps one input at a time, watching messages
pub fn highest_leads_after<P: Protocol<Timer = T>, T>(
    c: &mut Cluster<P>,
    faults: Vec<Fault<T>>,
    slice: Time,
    mut check: impl FnMut(&Cluster<P>) -> Result<(), String>,
) -> Result<(), String> {
    c.start_all();
    for f in faults {
        if let Some(step) = f.apply(c) {
            step.drive(c, slice, &mut check)?;
        }
        check(c)?;
    }
    if c.live().is_empty() {
        c.recover(0);
    }
    c.heal();
    c.run_for(c.liveness_bound());
    let highest = *c.live().last().expect("node 0 at least is up");
    match c.check_one_leader()? {
        leader if leader == highest => Ok(()),
        leader => Err(format!("n{leader} leads, not the highest live n{highest}")),
    }
}

impl<T> Fault<T> {
    /// Does a fault to `c`; hands a step back for the test to drive.
    pub fn apply<P: Protocol<Timer = T>>(self, c: &mut Cluster<P>) -> Option<Step> {
        match self {
            Fault::Crash(id) => c.crash(id),
            Fault::Recover(id) => c.recover(id),
            Fault::Partition(side) => c.split_off(&side),
            Fault::CutOneWay(a, b) => c.cut_one_way(a, b),
            Fault::Heal => c.heal(),
            Fault::Fire(id, timer) => {
                c.fire(id, timer);
            }
            Fault::Step(step) => return Some(step),
        }
        None
    }
}
