//! Results folders: what `sim run --out DIR`, `sim render TRACE` and a failing `sim check` write,
//! so that one command gives one folder to open.
//!
//! ```text
//! DIR/trace.jsonl     every event (the `--trace` format; `sim replay` reproduces it)
//! DIR/summary.json    the run's statistics and its first violation (`sim run --json`)
//! DIR/spacetime.html  the space-time diagram: one self-contained file, opens from file://
//! DIR/shiviz.log      the run for ShiViz (paste it into its input box unchanged)
//! ```

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use election_core::Protocol;
use election_view::{
    ReadOptions, Run, read_sim_trace, read_sim_trace_file, render_shiviz, render_spacetime,
};
use serde::Serialize;

use crate::check::Violation;
use crate::sim::{Outcome, Sim};
use crate::stats::RunStats;
use crate::trace::{Spec, TraceSink, read_trace};

/// The trace's file name in a results folder.
pub const TRACE: &str = "trace.jsonl";
/// The summary's file name.
pub const SUMMARY: &str = "summary.json";
/// The space-time diagram's file name.
pub const SPACETIME: &str = "spacetime.html";
/// The ShiViz log's file name.
pub const SHIVIZ: &str = "shiviz.log";

/// What `summary.json` and `sim run --json` hold.
#[derive(Serialize)]
pub struct RunReport<'a> {
    /// The algorithm.
    pub algorithm: &'a str,
    /// Nodes at boot.
    pub nodes: u32,
    /// The master seed.
    pub seed: u64,
    /// Messages, elections, time to a stable leader.
    pub stats: &'a RunStats,
    /// The first invariant broken, if any.
    pub violation: &'a Option<Violation>,
    /// The trace's hash, when a trace was written.
    pub trace_hash: Option<String>,
}

impl<'a> RunReport<'a> {
    /// The report of `out`, a run of `spec`.
    pub fn new(spec: &'a Spec, out: &'a Outcome, trace_hash: Option<u64>) -> Self {
        RunReport {
            algorithm: &spec.algorithm,
            nodes: spec.nodes,
            seed: spec.seed,
            stats: &out.stats,
            violation: &out.violation,
            trace_hash: trace_hash.map(|h| format!("{h:016x}")),
        }
    }
}

/// Simulates `spec` with `P` into the results folder `dir` (created if missing): the trace,
/// then the summary and the pictures drawn from that trace.
pub fn write_run<P: Protocol>(dir: &Path, spec: Spec) -> Result<Outcome, String> {
    create(dir)?;
    let path = dir.join(TRACE);
    let file = File::create(&path).map_err(|e| cannot("create", &path, e))?;
    let sink = TraceSink::new(Box::new(BufWriter::new(file)));
    let out = Sim::<P>::new(spec.clone(), Some(sink))
        .map_err(|e| e.to_string())?
        .run();
    let hash = trace_hash(&out)?;
    write_summary(dir, &RunReport::new(&spec, &out, Some(hash)))?;
    write_pictures(dir, &path)?;
    Ok(out)
}

/// Renders an existing trace into the results folder `dir` (by default the trace's own
/// folder): the pictures from the trace as it is, a copy of the trace if `dir` is elsewhere,
/// and the summary from a re-run of its spec — only if this build reproduces the trace (same
/// hash), since otherwise the figures would describe another run. Returns what was written.
pub fn render<P: Protocol>(trace: &Path, dir: Option<&Path>) -> Result<Vec<PathBuf>, String> {
    let (spec, recorded) = read_trace(trace)?;
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => trace
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf(),
    };
    create(&dir)?;
    let mut written = Vec::new();
    let copy = dir.join(TRACE);
    if !same_file(trace, &copy) {
        std::fs::copy(trace, &copy).map_err(|e| cannot("copy the trace to", &copy, e))?;
        written.push(copy);
    }
    written.extend(write_pictures(&dir, trace)?);
    if spec.explore.is_some() {
        // An explorer's counterexample: `sim explore` wrote its summary, `sim replay` re-runs it.
        return Ok(written);
    }
    let out = Sim::<P>::new(
        spec.clone(),
        Some(TraceSink::new(Box::new(std::io::sink()))),
    )
    .map_err(|e| e.to_string())?
    .run();
    if trace_hash(&out)? == recorded {
        written.push(write_summary(
            &dir,
            &RunReport::new(&spec, &out, Some(recorded)),
        )?);
    } else {
        eprintln!(
            "warning: this build does not reproduce {} (another simulator version?): \
             no {SUMMARY} written, the pictures show the trace as recorded",
            trace.display()
        );
    }
    Ok(written)
}

/// A trace writer whose bytes can be read back once the simulator is done with it.
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

/// Simulates `spec` with `P`, tracing into memory: the trace's bytes and the outcome.
pub fn trace_in_memory<P: Protocol>(spec: Spec) -> Result<(Vec<u8>, Outcome), String> {
    let buf = Shared::default();
    let sink = TraceSink::new(Box::new(buf.clone()));
    let out = Sim::<P>::new(spec, Some(sink))
        .map_err(|e| e.to_string())?
        .run();
    let bytes = buf.0.take();
    Ok((bytes, out))
}

/// Simulates `spec` with `P` and reads its trace back as a [`Run`] (what the pictures and the
/// comparison measures are computed from).
pub fn traced<P: Protocol>(spec: Spec) -> Result<(Run, Outcome), String> {
    let (bytes, out) = trace_in_memory::<P>(spec)?;
    let run = read_sim_trace(bytes.as_slice(), &ReadOptions::default())
        .map_err(|e| format!("the simulator's own trace does not read: {e}"))?;
    Ok((run, out))
}

/// Writes `spacetime.html` and `shiviz.log` into `dir`, drawn from the trace at `trace`.
pub(crate) fn write_pictures(dir: &Path, trace: &Path) -> Result<Vec<PathBuf>, String> {
    let run = read_sim_trace_file(trace, &ReadOptions::default()).map_err(|e| e.to_string())?;
    let mut written = Vec::new();
    for (name, text) in [
        (SPACETIME, render_spacetime(&run)),
        (SHIVIZ, render_shiviz(&run)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| cannot("write", &path, e))?;
        written.push(path);
    }
    Ok(written)
}

/// Writes `summary.json` into `dir`.
pub(crate) fn write_summary(dir: &Path, report: &impl Serialize) -> Result<PathBuf, String> {
    let path = dir.join(SUMMARY);
    let text = serde_json::to_string_pretty(report).expect("the report serializes");
    std::fs::write(&path, text + "\n").map_err(|e| cannot("write", &path, e))?;
    Ok(path)
}

/// The hash of the trace a run wrote, or why it could not be written.
pub(crate) fn trace_hash(out: &Outcome) -> Result<u64, String> {
    match &out.trace {
        Some(Ok(h)) => Ok(*h),
        Some(Err(e)) => Err(format!("writing the trace failed: {e}")),
        None => Err("the run wrote no trace".into()),
    }
}

pub(crate) fn create(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| cannot("create the results folder", dir, e))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `cannot WHAT PATH: ERROR`, the one wording of a file error.
pub(crate) fn cannot(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("cannot {what} {}: {e}", path.display())
}
