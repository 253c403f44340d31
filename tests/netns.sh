#!/usr/bin/env bash
# Several machines on one: three network namespaces ("hosts") joined by a bridge, each with its
# own IP in 10.77.0.0/24, each running `election run` with the same server_config. Checks that
# every host starts only its own lines, that the five nodes elect one leader across hosts, and
# that after the leader's host dies (SIGKILL of everything in it) the others elect the next one.
# The cluster is keyed (one `election keygen` key shared by every host, as a deployment would
# copy it), and a node without the key refuses to start on these non-loopback addresses.
#
# Usage: tests/netns.sh path/to/election [algorithm] [udp|tcp]
#        (root and iproute2 needed; exit 77 = skipped)
set -euo pipefail

BIN=${1:?usage: netns.sh path/to/election [algorithm] [udp|tcp]}
ALG=${2:-bully}
TRANSPORT_FLAG=""
[[ ${3:-udp} == udp ]] || TRANSPORT_FLAG="--transport=${3}"
if [[ $EUID -ne 0 ]]; then echo "SKIPPED: the network namespace test needs root"; exit 77; fi
if ! command -v ip >/dev/null; then echo "SKIPPED: iproute2 ('ip') is not installed"; exit 77; fi

TAG=el$$              # unique per run; interface names must stay within 15 characters
BR=${TAG}br
WORK=$(mktemp -d)
PIDS=()

cleanup() {
    for i in 1 2 3; do
        ip netns pids "${TAG}h$i" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns del "${TAG}h$i" 2>/dev/null || true
    done
    ip netns del "$BR" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "FAILED: $*"
    for i in 1 2 3; do echo "--- host $i"; tail -n 25 "$WORK/h$i.log" || true; done
    exit 1
}

# The bridge lives in a namespace of its own, so the host's network is never touched.
ip netns add "$BR"
ip -n "$BR" link add br0 type bridge
ip -n "$BR" link set br0 up
for i in 1 2 3; do
    ns=${TAG}h$i
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip link add "${TAG}v$i" type veth peer name "${TAG}p$i"
    ip link set "${TAG}v$i" netns "$ns"
    ip link set "${TAG}p$i" netns "$BR"
    ip -n "$ns" addr add "10.77.0.$i/24" dev "${TAG}v$i"
    ip -n "$ns" link set "${TAG}v$i" up
    ip -n "$BR" link set "${TAG}p$i" master br0 up
done

cat > "$WORK/server_config" <<CONFIG
# host 1
10.77.0.1:9000
10.77.0.1:9001
# host 2
10.77.0.2:9000
10.77.0.2:9001
# host 3 (the highest priority)
10.77.0.3:9000
CONFIG
ADDRS=(10.77.0.1:9000 10.77.0.1:9001 10.77.0.2:9000 10.77.0.2:9001 10.77.0.3:9000)

"$BIN" keygen "$WORK/cluster.key" >/dev/null || fail "election keygen failed"

# Secure by default: without a key, a node on a non-loopback address does not start.
if ip netns exec "${TAG}h1" "$BIN" node "$ALG" 10.77.0.1:9000 --config "$WORK/server_config" \
    >"$WORK/keyless.log" 2>&1; then
    fail "a keyless node started on 10.77.0.1"
fi
grep -q "no --key-file is given" "$WORK/keyless.log" || fail "keyless refusal: $(cat "$WORK/keyless.log")"
echo "ok: a keyless node refuses to start off loopback"

for i in 1 2 3; do
    ip netns exec "${TAG}h$i" "$BIN" run "$ALG" --config "$WORK/server_config" \
        --heartbeat-ms 50 --timeout-ms 300 --state-dir "$WORK/state-h$i" \
        --key-file "$WORK/cluster.key" $TRANSPORT_FLAG \
        >"$WORK/h$i.log" 2>&1 &
    PIDS+=($!)
done

# The last status line a node printed (relayed by its runner as "[ip:port] ...").
last_status() {
    grep -hF "[$1] " "$WORK"/h?.log | grep ' status ' | tail -n 1 || true
}

# Waits until every address in "${@:2}" reports Normal under leader $1.
wait_for_leader() {
    local leader=$1; shift
    local deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
        local ok=1
        for addr in "$@"; do
            local line
            line=$(last_status "$addr")
            [[ $line == *"state=Normal"* && $line == *"coordinator=Some(\"$leader\")"* ]] || ok=0
        done
        ((ok)) && return 0
        sleep 0.2
    done
    fail "nodes $* did not all follow $leader"
}

# Each host started exactly its own lines.
sleep 1
for i in 1 2 3; do
    for addr in "${ADDRS[@]}"; do
        if grep -q "node started.*addr=$addr" "$WORK/h$i.log"; then started=1; else started=0; fi
        if [[ $addr == 10.77.0.$i:* ]]; then want=1; else want=0; fi
        ((started == want)) || fail "host $i: started($addr) = $started, expected $want"
    done
done
echo "ok: every host started only its own lines"

wait_for_leader 10.77.0.3:9000 "${ADDRS[@]}"
echo "ok: all five nodes on three hosts follow 10.77.0.3:9000"

# Host 3 dies: every process in its namespace is killed.
ip netns pids "${TAG}h3" | xargs -r kill -9
wait_for_leader 10.77.0.2:9001 "${ADDRS[@]:0:4}"
echo "ok: after host 3 died, the four survivors follow 10.77.0.2:9001"

for i in 0 1; do
    kill -TERM "${PIDS[$i]}"
    wait "${PIDS[$i]}" || fail "the runner of host $((i + 1)) exited with status $?"
done
echo "ok: runners stopped cleanly"
echo "PASSED"
