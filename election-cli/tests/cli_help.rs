//! Every wired subcommand explains its flags in `--help`.

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_election"))
        .args(args)
        .arg("--help")
        .output()
        .expect("the election binary runs");
    assert!(out.status.success(), "{args:?} --help failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn assert_mentions(text: &str, words: &[&str]) {
    for word in words {
        assert!(text.contains(word), "help lacks {word:?}:\n{text}");
    }
}

const NODE_FLAGS: &[&str] = &[
    "--config",
    "--logserver",
    "--heartbeat-ms",
    "--timeout-ms",
    "--report-ms",
    "--option",
    "--cluster-id",
    "--state-dir",
    "[default: server_config]",
    "[default: 250]",
    "[default: 1000]",
];

#[test]
fn top_level_help_lists_the_subcommands() {
    assert_mentions(&help(&[]), &["demo", "node", "run", "logserver", "sim"]);
    assert_mentions(&help(&["sim"]), &["run", "check", "replay", "complexity"]);
}

#[test]
fn demo_logserver_and_sim_help_list_their_flags_and_defaults() {
    assert_mentions(
        &help(&["demo"]),
        &[
            "--algorithm",
            "--nodes",
            "[default: 5]",
            "--port",
            "[default: 4711]",
            "--base-port",
        ],
    );
    assert_mentions(
        &help(&["logserver"]),
        &[
            "--bind",
            "--port",
            "[default: 4711]",
            "--mongodb",
            "--data-dir",
            "--admin-token",
        ],
    );
    assert_mentions(
        &help(&["sim", "run"]),
        &[
            "--algorithm",
            "--nodes",
            "--seed",
            "--plan",
            "--trace",
            "--json",
            "[default: 5]",
        ],
    );
    assert_mentions(&help(&["sim", "check"]), &["--seeds", "--first-seed"]);
    assert_mentions(&help(&["sim", "replay"]), &["<TRACE>"]);
}

#[test]
fn node_help_lists_every_flag_and_default() {
    let text = help(&["node"]);
    assert_mentions(&text, NODE_FLAGS);
    assert_mentions(&text, &["--join", "<ALGORITHM>", "<ADDR>"]);
}

#[test]
fn run_help_lists_every_flag_and_default() {
    assert_mentions(&help(&["run"]), NODE_FLAGS);
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let out = Command::new(env!("CARGO_BIN_EXE_election"))
        .args([
            "node",
            "bully",
            "127.0.0.1:1",
            "--config",
            "/nonexistent/server_config",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/server_config"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
