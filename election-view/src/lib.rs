//! One trace vocabulary for simulated and real election runs, and the pictures drawn from it.
//!
//! - [`run`]: the vocabulary — a [`Run`] is a [`Header`] (title, algorithm, node names, the
//!   violation) and time-ordered [`Event`]s (lifecycle, messages, timers, status changes, marks),
//!   built from plain values with a [`RunBuilder`];
//! - [`sim_trace`]: reads the simulator's JSON Lines trace into a [`Run`], bounded, with errors that
//!   name the line and the field;
//! - [`render_spacetime`]: `spacetime.html`, an interactive, self-contained spacetime diagram;
//! - [`render_shiviz`]: the same run as a ShiViz log, with vector clocks ([`vector_clocks`]);
//! - [`metrics`]: availability and leader changes of a run;
//! - [`compare`]: `report.html` and a CSV of per-seed rows comparing algorithms.
//!
//! The crate depends on `election-core` only, so both the simulator and the logserver can use it.
//!
//! ```
//! use election_view::{ReadOptions, read_sim_trace, render_shiviz, render_spacetime};
//!
//! let trace = concat!(
//!     r#"{"version":"0.1.0","algorithm":"bully","nodes":2,"seed":1,"#,
//!     r#""timing":{"heartbeat":50000,"timeout":20000},"plan":{}}"#, "\n",
//!     r#"{"t":0,"ev":"start","node":0}"#, "\n",
//!     r#"{"t":0,"ev":"send","id":0,"from":0,"to":1,"kind":"Ping","msg":"Ping"}"#, "\n",
//!     r#"{"t":1500,"ev":"deliver","id":0,"from":0,"to":1,"kind":"Ping"}"#, "\n",
//! );
//! let run = read_sim_trace(trace.as_bytes(), &ReadOptions::default())?;
//! assert_eq!(run.events.len(), 3);
//! assert!(render_spacetime(&run).contains("<svg"));
//! assert!(render_shiviz(&run).contains(r#"n1 {"n0":2,"n1":1}"#));
//! # Ok::<(), election_view::ReadError>(())
//! ```

mod clock;
pub mod compare;
mod html;
pub mod metrics;
pub mod run;
mod shiviz;
pub mod sim_trace;
mod spacetime;

pub use clock::{Stamp, VectorClock, dominated_by, local_nodes, vector_clocks};
pub use compare::{
    AlgorithmRuns, AlgorithmSummary, CompareData, SeedRow, human_time, render_compare, write_csv,
};
pub use html::escape;
pub use metrics::{Measures, agreed_leader};
pub use run::{
    Event, EventKind, Header, Keep, Limit, MarkKind, MsgId, NodeIx, NodeStatus, Run, RunBuilder,
    Time, TimeUnit, UnknownNode, Violation,
};
pub use shiviz::{SHIVIZ_REGEX, ShivizEvent, check_shiviz, render_shiviz};
pub use sim_trace::{ReadError, ReadOptions, read_sim_trace, read_sim_trace_file};
pub use spacetime::render_spacetime;
