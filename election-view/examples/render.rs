//! Renders a simulator trace: `cargo run -p election-view --example render -- TRACE OUT_DIR`
//! writes `OUT_DIR/spacetime.html` and `OUT_DIR/shiviz.log`.

use std::path::PathBuf;

use election_view::{ReadOptions, read_sim_trace_file, render_shiviz, render_spacetime};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(trace), Some(out)) = (args.next(), args.next()) else {
        return Err("usage: render TRACE OUT_DIR".into());
    };
    let run = read_sim_trace_file(&PathBuf::from(trace), &ReadOptions::default())?;
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("spacetime.html"), render_spacetime(&run))?;
    std::fs::write(out.join("shiviz.log"), render_shiviz(&run))?;
    println!("{} events -> {}", run.events.len(), out.display());
    Ok(())
}
