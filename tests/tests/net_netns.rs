//! Several machines on one: runs `tests/netns.sh`, which puts `election run` into three network
//! namespaces with their own IPs and checks the cross-host election of a keyed cluster, over UDP
//! and over TCP. Skipped (loudly) without root or iproute2.

use std::process::Command;

use election_tests::election_bin;

fn three_namespaces(transport: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/netns.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(election_bin())
        .args(["bully", transport])
        .output()
        .expect("run bash");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match out.status.code() {
        Some(0) => assert!(text.contains("PASSED"), "{text}"),
        Some(77) => eprintln!(
            "\n*** net_netns ({transport}) SKIPPED: {}***\n",
            text.trim_end()
        ),
        _ => panic!("{script} failed ({}):\n{text}", out.status),
    }
}

#[test]
fn nodes_on_three_network_namespaces_elect_one_leader_over_udp() {
    three_namespaces("udp");
}

#[test]
fn nodes_on_three_network_namespaces_elect_one_leader_over_tcp() {
    three_namespaces("tcp");
}
