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

/// A failing `check --json` prints one JSON object on stdout: the seed, the violation (each node
/// named once) and the command that reproduces it; that command reproduces it.
#[test]
fn a_failing_check_prints_the_seed_the_violation_and_the_command_as_json() {
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
    ]);
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    let failure: Value = serde_json::from_str(&stdout).expect("one JSON object on stdout");
    let seed = failure["seed"].as_u64().expect("seed");
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
            let mut args = vec!["check", "--json"];
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
