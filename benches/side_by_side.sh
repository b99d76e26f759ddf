#!/usr/bin/env bash
# relayd and Hermes 1.10.5 on the same workloads, one after the other, on fresh devnet pairs on this machine
# (not run in CI). Two workloads:
#   backlog  N transfers each way are pending before the relayer starts (cleared on start);
#   steady   the relayer runs while RATE transfers per batch go each way, one batch after another, for DURATION seconds.
# Per run it prints seconds to all received and to all acknowledged, packets/s, receive latency p50/p99 (steady),
# the relayer's peak RSS and CPU seconds, the CPU seconds of the two nodes and the larger node's peak RSS; then
# Hermes/relayd ratios.
#
#   benches/side_by_side.sh [backlog|steady|both]      (default both)
#   N=2000 RATE=20 DURATION=60 BLOCK_TIME=500ms CAP=600 RELAYERS="relayd hermes" benches/side_by_side.sh
#
# RELAYERS may also name `none` (steady only): the same senders with no relayer, for the nodes' CPU the chains
# spend on their own (blocks, the senders' transfers, the balance sampler).
#
# NODE_CALLS=1 also logs every JSON-RPC call the nodes answer and prints, per run, the calls made from the
# relayer's start on, by method and query path (the senders' and the balance sampler's calls included: they are
# the same for every relayer and are printed too, so they can be told apart).
#
# Hermes is installed if missing (cargo install ibc-relayer-cli --version 1.10.5 --locked; needs protobuf-compiler
# and libclang-dev). Both relayers sign with the `relayer` account; transfers are sent by `user1` with Hermes's
# `tx ft-transfer` and received by `user2`, 1 stake each, so a receiver's voucher balance counts its packets.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-both}
N=${N:-2000}
RATE=${RATE:-20}
# Not SECONDS: bash keeps its own SECONDS (seconds since the shell started), which would read as 0 here.
SECONDS_STEADY=${DURATION:-60}
BLOCK_TIME=${BLOCK_TIME:-500ms}
CAP=${CAP:-600}
RELAYERS=${RELAYERS:-"relayd hermes"}
NODE_CALLS=${NODE_CALLS:-}
node_log=info
[ -n "$NODE_CALLS" ] && node_log=info,devnet::rpc=debug
BATCH=100

export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v hermes >/dev/null || ! hermes version 2>/dev/null | grep -q '1\.10\.5'; then
  echo "== installing Hermes 1.10.5"
  cargo install ibc-relayer-cli --version 1.10.5 --locked
fi
HERMES=$(command -v hermes)
cargo build -q --release -p devnet -p relayd
target="${CARGO_TARGET_DIR:-target}"
devnet="$target/release/devnet"
relayd_bin="$target/release/relayd"

results=$(mktemp)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
hz=$(getconf CLK_TCK)
# cpu PID: user+system CPU seconds of a running process.
cpu() { awk -v hz="$hz" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$1/stat"; }
# rss PID: peak resident set in MB.
rss() { awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
now() { date +%s.%N; }

# The devnet's proof spec (docs/devnet.md): JMT at both levels.
leaf_prefix=$(printf 'JMT::LeafNode' | base64 -w0)
placeholder=$(printf 'SPARSE_MERKLE_PLACEHOLDER_HASH__' | base64 -w0)
spec="{\"leaf_spec\":{\"hash\":1,\"prehash_key\":1,\"prehash_value\":1,\"length\":0,\"prefix\":\"$leaf_prefix\"},\"inner_spec\":{\"child_order\":[0,1],\"child_size\":32,\"min_prefix_length\":16,\"max_prefix_length\":16,\"empty_child\":\"$placeholder\",\"hash\":1},\"max_depth\":64,\"min_depth\":0,\"prehash_key_before_comparison\":true}"
voucher="ibc/$(printf 'transfer/channel-0/stake' | sha256sum | cut -c1-64 | tr a-f A-F)"
other() { [ "$1" = ibc-0 ] && echo ibc-1 || echo ibc-0; }

# setup: fresh chains, Hermes keys, a transfer channel (created by Hermes, not timed), relayd's config.
setup() {
  work=$(mktemp -d)
  hermes() { HOME="$work" "$HERMES" "$@"; }
  declare -gA rpc grpc node_pid receiver
  for chain in ibc-0 ibc-1; do
    rpc[$chain]=$(free_port)
    grpc[$chain]=$(free_port)
    RUST_LOG=$node_log "$devnet" --chain-id "$chain" --rpc-addr "127.0.0.1:${rpc[$chain]}" --grpc-addr "127.0.0.1:${grpc[$chain]}" \
      --block-time "$BLOCK_TIME" --accounts 2 --home "$work/$chain" > "$work/$chain.log" 2>&1 &
    node_pid[$chain]=$!
    pids+=($!)
  done
  for chain in ibc-0 ibc-1; do
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:${rpc[$chain]}/status" > /dev/null && break; sleep 0.1; done
    receiver[$chain]=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['address'])" "$work/$chain/keys/user2.json")
  done
  # Hermes as its guide recommends for throughput (benches/hermes/, shared with the scale bench).
  config="$work/hermes.toml"
  sed -e "s|@LOG_LEVEL@|warn|" -e "s|@REST_PORT@|$(free_port)|" -e "s|@TELEMETRY_PORT@|$(free_port)|" \
    benches/hermes/global.toml > "$config"
  for chain in ibc-0 ibc-1; do
    sed -e "s|@ID@|$chain|" -e "s|@RPC@|http://127.0.0.1:${rpc[$chain]}|" -e "s|@GRPC@|http://127.0.0.1:${grpc[$chain]}|" \
      -e "s|@WS@|ws://127.0.0.1:${rpc[$chain]}/websocket|" -e "s|@PROOF_SPECS@|[$spec, $spec]|" \
      benches/hermes/chain.toml >> "$config"
    for key in relayer user1; do
      python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['mnemonic'])" "$work/$chain/keys/$key.json" > "$work/$chain-$key.mnemonic"
    done
    hermes --config "$config" keys add --chain "$chain" --mnemonic-file "$work/$chain-relayer.mnemonic" > /dev/null
    hermes --config "$config" keys add --chain "$chain" --key-name sender --mnemonic-file "$work/$chain-user1.mnemonic" > /dev/null
  done
  hermes --config "$config" create channel --a-chain ibc-0 --b-chain ibc-1 --a-port transfer --b-port transfer \
    --new-client-connection --yes > "$work/create.log" 2>&1 || { tail -30 "$work/create.log"; echo "create channel failed"; exit 1; }

  admin_port=$(free_port)
  printf '[global]\ndata_dir = "data"\n[admin]\nlisten_addr = "127.0.0.1:%s"\n' "$admin_port" > "$work/relayd.toml"
  for chain in ibc-0 ibc-1; do
    cat >> "$work/relayd.toml" <<TOML

[[chains]]
id = "$chain"
rpc_addr = "http://127.0.0.1:${rpc[$chain]}"
account_prefix = "cosmos"
key_name = "relayer"
gas_price = "0.001stake"
store_prefix = "ibc"
proof_specs = ["jmt", "jmt"]
max_gas = 50000000
max_msg_num = 100
max_block_time = "2s"
client_ids = ["07-tendermint-0"]
TOML
    python3 - "$work/$chain/keys/relayer.json" "$work/$chain-relayd.json" <<'PY'
import json, os, sys
key = json.load(open(sys.argv[1]))["private_key"]
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, json.dumps({"private_key": key}).encode())
os.close(fd)
PY
  done
  cat >> "$work/relayd.toml" <<TOML

[[connections]]
src = { chain_id = "ibc-0", client_id = "07-tendermint-0" }
dest = { chain_id = "ibc-1", client_id = "07-tendermint-0" }
paths = [{ src_port = "transfer", src_channel = "channel-0", dest_port = "transfer" }]
TOML
  for chain in ibc-0 ibc-1; do
    "$relayd_bin" -c "$work/relayd.toml" keys add --chain "$chain" --key-file "$work/$chain-relayd.json" > /dev/null
  done
}

balance() {
  python3 - "$1" "$2" "$voucher" <<'PY'
import base64, json, sys, urllib.request
port, addr, denom = sys.argv[1:]
req = bytes([0x0a, len(addr)]) + addr.encode() + bytes([0x12, len(denom)]) + denom.encode()
url = f"http://127.0.0.1:{port}/abci_query?path=%22/cosmos.bank.v1beta1.Query/Balance%22&data=0x{req.hex()}"
value = base64.b64decode(json.load(urllib.request.urlopen(url))["result"]["response"].get("value") or "")
i = value.rfind(b"\x12")
print(value[i + 2:].decode() if i > 0 else "0")
PY
}
pending() {
  "$relayd_bin" -c "$work/relayd.toml" query packet pending "$1" transfer channel-0 --json 2>/dev/null \
    | python3 -c 'import json,sys; v=json.load(sys.stdin); print(len(v["unreceived_packets"]) + len(v["unrelayed_acks"]))'
}
# send SRC COUNT: COUNT transfers of 1 stake from user1 on SRC to user2 on the other chain, BATCH per transaction.
send() {
  local src=$1 left=$2 n dst
  dst=$(other "$src")
  while [ "$left" -gt 0 ]; do
    n=$(( left < BATCH ? left : BATCH ))
    HOME="$work" "$HERMES" --config "$config" tx ft-transfer --src-chain "$src" --dst-chain "$dst" --key-name sender \
      --src-port transfer --src-channel channel-0 --amount 1 --denom stake --receiver "${receiver[$dst]}" \
      --number-msgs "$n" --timeout-seconds 3600 >> "$work/send.log" 2>&1 || { tail -20 "$work/send.log"; exit 1; }
    left=$(( left - n ))
  done
}

start_relayer() {
  case $1 in
    relayd) "$relayd_bin" --log-format text -c "$work/relayd.toml" start > "$work/relayer.log" 2>&1 & ;;
    hermes) HOME="$work" "$HERMES" --config "$config" start > "$work/relayer.log" 2>&1 & ;;
    # No relayer: what the chains cost on their own (blocks, the senders' transfers, the balance sampler).
    none) sleep infinity & ;;
  esac
  relayer_pid=$!
  pids+=($relayer_pid)
  # The nodes' CPU from here on is what the relayer costs them (setup and sending before it are not counted).
  node_cpu0=$(python3 -c "print($(cpu "${node_pid[ibc-0]}") + $(cpu "${node_pid[ibc-1]}"))")
  declare -gA node_log_from
  for chain in ibc-0 ibc-1; do node_log_from[$chain]=$(wc -l < "$work/$chain.log"); done
}

# calls RELAYER: the JSON-RPC calls both nodes answered since the relayer started, by method and path (NODE_CALLS).
calls() {
  for chain in ibc-0 ibc-1; do tail -n +"$(( ${node_log_from[$chain]} + 1 ))" "$work/$chain.log"; done \
    | python3 -c '
import collections, re, sys
strip = re.compile(r"\x1b\[[0-9;]*m")
tally = collections.Counter()
for line in sys.stdin:
    line = strip.sub("", line)
    m = re.search(r"method=\"?([a-z_]+)\"?\s+path=\"?([^\s\"]*)\"?\s+query=\"?([^\"]*)\"?\s+key=(\S*)", line)
    if m:
        method, path, query, key = m.groups()
        # a tx_search is named by the event it looks for, a store read by its key; not by their numbers
        what = re.sub(r"[0-9]+", "N", path + " " + (query or key))[:70]
        tally[(method, what)] += 1
print(f"   {sum(tally.values())} calls:")
for (method, what), n in tally.most_common(25):
    print(f"   {n:8d}  {method} {what}")
' | sed "s/^/$1 /"
}

# wait_done TOTAL T0: returns "received_s acked_s" (or "-" past CAP) once both receivers hold TOTAL and nothing is
# pending, sampling balances into $work/samples.
wait_done() {
  local total=$1 t0=$2 recv="-" ack="-" b0 b1 t
  while :; do
    t=$(now)
    b0=$(balance "${rpc[ibc-0]}" "${receiver[ibc-0]}")
    b1=$(balance "${rpc[ibc-1]}" "${receiver[ibc-1]}")
    echo "$t $b0 $b1" >> "$work/samples"
    if [ "$recv" = "-" ] && [ "$b0" -ge "$total" ] && [ "$b1" -ge "$total" ]; then
      recv=$(python3 -c "print(f'{$t - $t0:.1f}')")
    fi
    if [ "$recv" != "-" ] && [ "$(pending ibc-0)" = 0 ] && [ "$(pending ibc-1)" = 0 ]; then
      ack=$(python3 -c "print(f'{$(now) - $t0:.1f}')")
      break
    fi
    if python3 -c "import sys; sys.exit(0 if $t - $t0 > $CAP else 1)"; then break; fi
    sleep 0.1
  done
  echo "$recv $ack $b0 $b1"
}

finish() {
  local relayer=$1 workload=$2 total=$3 recv=$4 ack=$5 got=$6 lat=$7
  local r_cpu r_rss n_cpu n_rss pps
  r_cpu=$(cpu "$relayer_pid"); r_rss=$(rss "$relayer_pid")
  n_rss=$(( $(rss "${node_pid[ibc-0]}") > $(rss "${node_pid[ibc-1]}") ? $(rss "${node_pid[ibc-0]}") : $(rss "${node_pid[ibc-1]}") ))
  n_cpu=$(python3 -c "print(f'{$(cpu "${node_pid[ibc-0]}") + $(cpu "${node_pid[ibc-1]}") - $node_cpu0:.1f}')")
  if [ -n "$NODE_CALLS" ]; then calls "$relayer"; fi
  pps=$( [ "$ack" != "-" ] && python3 -c "print(f'{2 * $total / $ack:.0f}')" || echo "-")
  printf '%-7s %-8s %6s each way: received %6ss, acknowledged %6ss, %5s packets/s, latency %s, RSS %s MB, CPU %ss, nodes %ss CPU (peak node RSS %s MB)%s\n' \
    "$relayer" "$workload" "$total" "$recv" "$ack" "$pps" "$lat" "$r_rss" "$r_cpu" "$n_cpu" "$n_rss" "$got" | tee -a "$results"
  cleanup
  pids=()
  rm -rf "$work"
}

backlog() {
  local relayer=$1 out recv ack b0 b1 got=""
  setup
  send ibc-0 "$N" & local s0=$!
  send ibc-1 "$N"
  wait "$s0"
  start_relayer "$relayer"
  out=$(wait_done "$N" "$(now)")
  read -r recv ack b0 b1 <<< "$out"
  [ "$ack" = "-" ] && got=" (after ${CAP}s: $b1 of $N received on ibc-1, $b0 on ibc-0)"
  finish "$relayer" backlog "$N" "$recv" "$ack" "$got" "-"
}

steady() {
  local relayer=$1 out recv ack b0 b1 got="" t0 total lat
  setup
  start_relayer "$relayer"
  sleep 5
  t0=$(now)
  # Balances are sampled from the start, not only once the senders are done, so that latency counts from the
  # block that carried a packet to the sample that shows it received.
  ( while [ -d "$work" ] && [ ! -e "$work/stop-sampling" ]; do
      t=$(now)
      echo "$t $(balance "${rpc[ibc-0]}" "${receiver[ibc-0]}") $(balance "${rpc[ibc-1]}" "${receiver[ibc-1]}")" >> "$work/samples"
      sleep 0.1
    done ) &
  local sampler=$!
  # One sender per direction: a batch of RATE transfers, then the next once it is in a block.
  for src in ibc-0 ibc-1; do
    ( end=$(python3 -c "print($t0 + $SECONDS_STEADY)"); sent=0
      while python3 -c "import sys; sys.exit(0 if $(now) < $end else 1)"; do
        send "$src" "$RATE"; sent=$(( sent + RATE )); echo "$(now) $sent" >> "$work/sent-$src"
      done ) &
    pids+=($!)
  done
  wait "${pids[-1]}" "${pids[-2]}"
  touch "$work/stop-sampling"
  wait "$sampler"
  total=$(tail -1 "$work/sent-ibc-0" | cut -d' ' -f2)
  [ "$(tail -1 "$work/sent-ibc-1" | cut -d' ' -f2)" = "$total" ] || total=$(( total < $(tail -1 "$work/sent-ibc-1" | cut -d' ' -f2) ? total : $(tail -1 "$work/sent-ibc-1" | cut -d' ' -f2) ))
  if [ "$relayer" = none ]; then
    finish none steady "$total" - - "" -
    return
  fi
  out=$(wait_done "$total" "$t0")
  read -r recv ack b0 b1 <<< "$out"
  [ "$ack" = "-" ] && got=" (after ${CAP}s: $b1 of $total received on ibc-1, $b0 on ibc-0)"
  # Latency of the k-th packet each way: from the time the batch that carried it was in a block to the first
  # balance sample that counts k (packets may arrive out of order; the quantiles are over counts, not sequences).
  lat=$(python3 - "$work" <<'PY'
import sys, bisect
work = sys.argv[1]
samples = sorted(tuple(float(x) for x in l.split()) for l in open(f"{work}/samples") if len(l.split()) == 3)
lat = []
for src, col in (("ibc-0", 2), ("ibc-1", 1)):
    sent = [tuple(float(x) for x in l.split()) for l in open(f"{work}/sent-{src}")]
    prev = 0
    for t, count in sent:
        for k in range(int(prev) + 1, int(count) + 1):
            got = next((s[0] for s in samples if s[col] >= k), None)
            if got is not None:
                lat.append(max(0.0, got - t))
        prev = count
lat.sort()
if lat:
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    print(f"p50 {p(0.5) * 1000:.0f} ms p99 {p(0.99) * 1000:.0f} ms")
else:
    print("-")
PY
)
  finish "$relayer" steady "$total" "$recv" "$ack" "$got" "$lat"
}

echo "devnet pairs with $BLOCK_TIME blocks; backlog N=$N each way; steady RATE=$RATE per batch for ${SECONDS_STEADY}s; cap ${CAP}s"
for relayer in $RELAYERS; do
  case $mode in
    backlog) backlog "$relayer" ;;
    steady) steady "$relayer" ;;
    both) backlog "$relayer"; steady "$relayer" ;;
    *) echo "usage: $0 [backlog|steady|both]"; exit 2 ;;
  esac
done
echo
echo "== ratios (Hermes / relayd; acknowledged seconds, CPU seconds, node CPU seconds)"
python3 - "$results" <<'PY'
import re, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    m = re.search(r"acknowledged +(\S+)s.*CPU (\S+)s, nodes (\S+)s", line)
    rows[(f[0], f[1])] = m.groups() if m else None
for workload in ("backlog", "steady"):
    r, h = rows.get(("relayd", workload)), rows.get(("hermes", workload))
    if not r or not h:
        continue
    def ratio(a, b):
        try:
            return f"{float(b) / float(a):.1f}x"
        except ValueError:
            return "n/a (not finished)"
    print(f"{workload}: time {ratio(r[0], h[0])}, relayer CPU {ratio(r[1], h[1])}, node CPU {ratio(r[2], h[2])}")
PY
