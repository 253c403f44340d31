//! The `sim` command line as a user runs it (the standalone `election-sim` binary has the same
//! subcommands as `election sim`).

use std::process::Command;

use serde_json::Value;

fn sim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_election-sim"))
        .args(args)
        .output()
        .expect("run election-sim");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A scratch folder of this test process.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("election-sim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A failing `check --json` prints one JSON object on stdout: the seed, the violation (each node
/// named once), the command that reproduces it and the failing seed's results folder; that
/// command reproduces it, and the folder holds its trace, summary and pictures.
#[test]
fn a_failing_check_prints_the_seed_the_violation_and_the_command_as_json() {
    let out = scratch("failures");
    let (code, stdout, stderr) = sim(&[
        "check",
        "--algorithm",
        "bully",
        "-o",
        "halts=any-higher",
        "--synchronous",
        "--seeds",
        "3000",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    let failure: Value = serde_json::from_str(&stdout).expect("one JSON object on stdout");
    let seed = failure["seed"].as_u64().expect("seed");
    let folder = out.join(format!("bully-seed-{seed}"));
    assert_eq!(failure["folder"], folder.to_str().unwrap(), "{failure}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["seed"], seed);
    assert_eq!(summary["violation"], failure["violation"]);
    let page = std::fs::read_to_string(folder.join("spacetime.html")).unwrap();
    assert!(
        page.contains("\"violation\":{"),
        "the picture carries the violation"
    );
    assert!(folder.join("shiviz.log").is_file() && folder.join("trace.jsonl").is_file());
    assert_eq!(failure["violation"]["invariant"], "agreement", "{failure}");
    let nodes = failure["violation"]["nodes"].as_array().unwrap();
    let mut unique = nodes.clone();
    unique.dedup();
    unique.sort_by_key(|n| n.as_u64());
    unique.dedup();
    assert_eq!(unique.len(), nodes.len(), "a node listed twice: {failure}");
    let reproduce = failure["reproduce"].as_str().unwrap();
    assert!(
        reproduce.ends_with(&format!(
            "--algorithm bully --nodes 5 -o halts=any-higher --synchronous --seed {seed}"
        )),
        "{reproduce}"
    );
    let args: Vec<&str> = reproduce
        .strip_prefix("election sim ")
        .unwrap()
        .split(' ')
        .collect();
    let (code, stdout, _) = sim(&args);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("VIOLATION") && stdout.contains("agreement"),
        "{stdout}"
    );
}

/// The synchronous mode of the default Bully holds Assertion 1, says so and stays in the model.
#[test]
fn synchronous_runs_stay_in_the_model() {
    let (code, stdout, _) = sim(&[
        "run",
        "--algorithm",
        "bully",
        "--synchronous",
        "--seed",
        "7",
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("synchronous throughout"), "{stdout}");
    let (code, stdout, _) = sim(&["run", "--algorithm", "bully", "--seed", "7"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("left the synchronous model"), "{stdout}");
}

/// A report with its timing fields removed: what `--jobs` and `--shard` must not change.
fn without_timing(json: &str) -> Value {
    let mut v: Value = serde_json::from_str(json).expect("a JSON report");
    let map = v.as_object_mut().expect("an object");
    assert!(map.remove("wall_s").is_some() && map.remove("seeds_per_s").is_some());
    v
}

/// `--jobs N` gives the serial verdict, and the merge of `--shard K/N` reports equals the
/// unsharded report field for field but the timing — for a passing sweep and for a failing one
/// (the lowest failing seed).
#[test]
fn parallel_and_sharded_sweeps_give_the_serial_report() {
    let dir = std::env::temp_dir().join(format!("election-sim-shards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for flags in [
        &["--algorithm", "ring", "--seeds", "120"][..],
        &[
            "--algorithm",
            "bully",
            "-o",
            "halts=any-higher",
            "--synchronous",
            "--seeds",
            "2000",
        ],
    ] {
        let check = |extra: &[&str]| {
            let mut args = vec!["check", "--json", "--out", dir.to_str().unwrap()];
            args.extend_from_slice(flags);
            args.extend_from_slice(extra);
            sim(&args)
        };
        let (serial_code, serial, _) = check(&["--jobs", "1"]);
        let (code, parallel, _) = check(&["--jobs", "3"]);
        assert_eq!(code, serial_code);
        assert_eq!(
            without_timing(&parallel),
            without_timing(&serial),
            "--jobs 3"
        );
        let mut files = Vec::new();
        for k in 0..3 {
            let (_, report, _) = check(&["--shard", &format!("{k}/3")]);
            let path = dir.join(format!("shard-{k}.json"));
            std::fs::write(&path, report).unwrap();
            files.push(path.display().to_string());
        }
        let mut args = vec!["merge"];
        args.extend(files.iter().map(String::as_str));
        let (code, merged, stderr) = sim(&args);
        assert_eq!(code, serial_code, "{stderr}");
        assert_eq!(
            without_timing(&merged),
            without_timing(&serial),
            "merge of 3 shards"
        );
        // A shard missing is refused.
        let (code, _, stderr) = sim(&["merge", &files[0], &files[2]]);
        assert_eq!(code, 2);
        assert!(stderr.contains("shard"), "{stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `run --out DIR` writes the results folder; `render` of its trace into another folder writes
/// the same pictures and summary (the pictures are a function of the trace, the summary of the
/// spec it reproduces); a trace this build does not reproduce still renders, without a summary.
#[test]
fn run_out_writes_a_results_folder_and_render_redraws_it() {
    let dir = scratch("folder");
    let (a, b) = (dir.join("run"), dir.join("render"));
    let (code, stdout, stderr) = sim(&[
        "run",
        "--algorithm",
        "invitation",
        "--seed",
        "3",
        "--out",
        a.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("spacetime.html"), "says where: {stdout}");
    let page = std::fs::read_to_string(a.join("spacetime.html")).unwrap();
    assert!(
        page.contains("\"violation\":null"),
        "a run without violation"
    );
    let trace = a.join("trace.jsonl");
    let (code, stdout, stderr) = sim(&[
        "render",
        trace.to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    for name in [
        "trace.jsonl",
        "summary.json",
        "spacetime.html",
        "shiviz.log",
    ] {
        let (x, y) = (
            std::fs::read(a.join(name)).unwrap(),
            std::fs::read(b.join(name)).unwrap(),
        );
        assert!(x == y, "{name} differs between run --out and render");
        assert!(!x.is_empty(), "{name} is empty");
    }
    // A trace whose events no longer match its spec: pictures yes, summary no.
    let text = std::fs::read_to_string(&trace).unwrap();
    let edited = dir.join("edited");
    std::fs::create_dir_all(&edited).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let header = lines[0].replace("\"seed\":3", "\"seed\":4");
    assert_ne!(header, lines[0], "the header names the seed");
    lines[0] = &header;
    std::fs::write(edited.join("trace.jsonl"), lines.join("\n") + "\n").unwrap();
    let (code, _, stderr) = sim(&["render", edited.join("trace.jsonl").to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("does not reproduce"), "{stderr}");
    assert!(edited.join("spacetime.html").is_file());
    assert!(!edited.join("summary.json").exists());
}

/// `compare` runs every algorithm on one scenario and writes the report, one CSV row per
/// algorithm and seed, and the data; `--jobs` does not change the data.
#[test]
fn compare_writes_the_report_of_every_algorithm() {
    let dir = scratch("compare");
    let plan = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/leader-isolated.toml"
    );
    let report = |out: &std::path::Path, jobs: &str| {
        let (code, stdout, stderr) = sim(&[
            "compare",
            "--plan",
            plan,
            "--seeds",
            "3",
            "--jobs",
            jobs,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        stdout
    };
    let stdout = report(&dir.join("a"), "1");
    let names: Vec<String> = {
        let (_, list, _) = sim(&["algorithms", "--names"]);
        list.lines().map(str::to_string).collect()
    };
    for name in &names {
        assert!(
            stdout.lines().any(|l| l.starts_with(name.as_str())),
            "{name} in the table: {stdout}"
        );
    }
    let csv = std::fs::read_to_string(dir.join("a/runs.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 3 * names.len(), "{csv}");
    let html = std::fs::read_to_string(dir.join("a/report.html")).unwrap();
    assert!(html.contains("leader-isolated.toml"));
    report(&dir.join("b"), "2");
    assert_eq!(
        std::fs::read(dir.join("a/data.json")).unwrap(),
        std::fs::read(dir.join("b/data.json")).unwrap()
    );
}
