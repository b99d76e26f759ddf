#!/usr/bin/env bash
# Chaos soak (not run in CI): two Cosmos devnets (`--persist`, so a killed node restarts as the same chain), relayd
# between them with each node's RPC behind a fault proxy (benches/soak_proxy.py), transfers going both ways all the
# time, and for DURATION seconds one random fault after another:
#   kill_relayd   SIGKILL relayd, restart it 1-3 s later;
#   stop_node     SIGSTOP one node for 5-15 s, then SIGCONT;
#   cut_rpc       the proxy drops every connection to one node and refuses new ones for 5-15 s;
#   slow_rpc      the proxy delays every answer of one node by 300-1500 ms for 10 s;
#   restart_node  SIGKILL one node and start it again from its stored blocks;
#   corrupt       the proxy changes one answer of one node (a header's app hash or a query's value).
# After each fault it waits for relayd's /health to say ready again and then for every transfer escrowed by then to be
# received on the other chain; the time from the fault's end to that is its recovery time.
# At the end traffic stops, the faults stop, and the run passes only if both ends have 0 packets pending, each
# receiver's vouchers equal exactly what the other chain's escrow holds, and every transfer the sender saw succeed
# is in that escrow. It prints a markdown summary (faults per kind, packets relayed, recovery times, relayd's RSS
# over time) and exits 1 on any loss.
#
#   benches/soak.sh                                 (DURATION=1800 MIN_FAULTS=100)
#   DURATION=300 MIN_FAULTS=10 BLOCK_TIME=1s RATE=5 CARGO_TARGET_DIR=... benches/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-1800}
MIN_FAULTS=${MIN_FAULTS:-100}
BLOCK_TIME=${BLOCK_TIME:-1s}
RATE=${RATE:-5}            # transfers per round, each way; a round every 2 s
PROFILE=${PROFILE:-release}
KINDS=${KINDS:-"kill_relayd stop_node cut_rpc slow_rpc restart_node corrupt"}

cargo build -q --profile "$PROFILE" -p devnet -p relayd
dir=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
target="${CARGO_TARGET_DIR:-target}"
work=$(mktemp -d /tmp/relayd-soak.XXXXXX)
echo "== soak work dir: $work"
# Copies, so a build during the soak does not swap the binaries under a restart.
mkdir "$work/bin"
cp "$target/$dir/devnet" "$target/$dir/relayd" "$work/bin/"
devnet="$work/bin/devnet"
relayd_bin="$work/bin/relayd"
pids=()
cleanup() {
  for p in "${pids[@]}" ${relayd_pid:-} ${node_pid[ibc-0]:-} ${node_pid[ibc-1]:-}; do
    kill -CONT "$p" 2>/dev/null || true
    kill "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
now() { date +%s.%N; }
other() { [ "$1" = ibc-0 ] && echo ibc-1 || echo ibc-0; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

declare -A rpc grpc proxy node_pid receiver seed
seed[ibc-0]=11
seed[ibc-1]=12
start_node() {
  local chain=$1
  "$devnet" --chain-id "$chain" --rpc-addr "127.0.0.1:${rpc[$chain]}" --grpc-addr "127.0.0.1:${grpc[$chain]}" \
    --block-time "$BLOCK_TIME" --accounts 3 --seed "${seed[$chain]}" --persist --home "$work/$chain" \
    >> "$work/$chain.log" 2>&1 &
  node_pid[$chain]=$!
  for _ in $(seq 600); do curl -sf "http://127.0.0.1:${rpc[$chain]}/status" > /dev/null && return 0; sleep 0.1; done
  echo "node $chain did not come up"; tail -20 "$work/$chain.log"; exit 1
}

for chain in ibc-0 ibc-1; do
  rpc[$chain]=$(free_port)
  grpc[$chain]=$(free_port)
  proxy[$chain]=$(free_port)
  echo pass > "$work/$chain.proxy"
  python3 benches/soak_proxy.py "${proxy[$chain]}" "${rpc[$chain]}" "$work/$chain.proxy" 2>> "$work/proxy.log" &
  pids+=($!)
  start_node "$chain"
done
for chain in ibc-0 ibc-1; do
  receiver[$chain]=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['address'])" "$work/$chain/keys/user2.json")
done

# relayd reads each chain through its proxy; the sender (another relayd data dir holding user1's key) talks to the
# nodes directly, so traffic is sent whatever the proxy does.
admin_port=$(free_port)
write_config() { # FILE DATA_DIR VIA [CLIENT_IDS]
  local file=$1 data=$2 via=$3 clients=${4:-}
  printf '[global]\ndata_dir = "%s"\n' "$data" > "$file"
  [ "$via" = proxy ] && printf '[admin]\nlisten_addr = "127.0.0.1:%s"\n' "$admin_port" >> "$file"
  for chain in ibc-0 ibc-1; do
    local port=${rpc[$chain]}
    [ "$via" = proxy ] && port=${proxy[$chain]}
    cat >> "$file" <<TOML

[[chains]]
id = "$chain"
rpc_addr = "http://127.0.0.1:$port"
account_prefix = "cosmos"
key_name = "relayer"
gas_price = "0.001stake"
store_prefix = "ibc"
proof_specs = ["jmt", "jmt"]
max_gas = 50000000
max_block_time = "5s"
TOML
    [ -n "$clients" ] && echo "client_ids = [$clients]" >> "$file"
  done
  return 0
}
write_config "$work/relayd.toml" "$work/relayd-data" proxy
write_config "$work/sender.toml" "$work/sender-data" direct
for chain in ibc-0 ibc-1; do
  "$relayd_bin" -c "$work/relayd.toml" keys add --chain "$chain" --key-file "$work/$chain/keys/relayer.json" > /dev/null
  "$relayd_bin" -c "$work/sender.toml" keys add --chain "$chain" --key-file "$work/$chain/keys/user1.json" > /dev/null
done
"$relayd_bin" -c "$work/relayd.toml" create connection --a-chain ibc-0 --b-chain ibc-1 > "$work/create.log" 2>&1
"$relayd_bin" -c "$work/relayd.toml" create channel --a-chain ibc-0 --a-connection connection-0 --a-port transfer \
  >> "$work/create.log" 2>&1 || { tail -30 "$work/create.log"; echo "create channel failed"; exit 1; }
write_config "$work/relayd.toml" "$work/relayd-data" proxy '"07-tendermint-0"'
cat >> "$work/relayd.toml" <<TOML

[[connections]]
src = { chain_id = "ibc-0", client_id = "07-tendermint-0" }
dest = { chain_id = "ibc-1", client_id = "07-tendermint-0" }
paths = [{ src_port = "transfer", src_channel = "channel-0", dest_port = "transfer" }]
TOML

start_relayd() {
  "$relayd_bin" -c "$work/relayd.toml" start >> "$work/relayd.log" 2>&1 &
  relayd_pid=$!
  echo "$relayd_pid" > "$work/relayd.pid"
}
healthy() { curl -sf -m 2 "http://127.0.0.1:$admin_port/health" 2>/dev/null | grep -q '"ready":true'; }
start_relayd
for _ in $(seq 1200); do healthy && break; sleep 0.1; done
healthy || { echo "relayd did not become ready"; tail -40 "$work/relayd.log"; exit 1; }

# Traffic: RATE transfers each way every 2 s, from user1 to user2; successes are tallied per source chain.
: > "$work/sent.ibc-0"; : > "$work/sent.ibc-1"
traffic() {
  while [ ! -e "$work/stop-traffic" ]; do
    for src in ibc-0 ibc-1; do
      if "$relayd_bin" -c "$work/sender.toml" tx transfer --src-chain "$src" --dst-chain "$(other "$src")" \
        --channel channel-0 --amount 1stake --receiver "${receiver[$(other "$src")]}" --count "$RATE" \
        >> "$work/traffic.log" 2>&1; then
        echo "$RATE" >> "$work/sent.$src"
      fi
    done
    sleep 2
  done
}
traffic &
traffic_pid=$!
pids+=($traffic_pid)

# RSS of relayd every 30 s (it restarts, so each sample is of the process running then).
( while [ ! -e "$work/stop-traffic" ]; do echo "$(date +%s) $(rss_kb "$(cat "$work/relayd.pid")")" >> "$work/rss"; sleep 30; done ) &
pids+=($!)

pending() {
  "$relayd_bin" -c "$work/relayd.toml" query packet pending "$1" transfer channel-0 --json 2>/dev/null \
    | python3 -c 'import json,sys; v=json.load(sys.stdin); print(len(v["unreceived_packets"]) + len(v["unrelayed_acks"]))' \
    || echo unknown
}
# balance CHAIN ADDRESS DENOM: the amount, 0 if none.
balance() {
  "$relayd_bin" -c "$work/sender.toml" query balance --chain "$1" --address "$2" --denom "$3" --json \
    | python3 -c 'import json,sys; b=json.load(sys.stdin)["balances"]; print(sum(int(x["amount"]) for x in b))'
}
escrow() { # the ADR-028 escrow account of transfer/channel-0 on a devnet
  python3 - <<'PY'
import hashlib
CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
def polymod(values):
    gen = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3]
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1ffffff) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if ((top >> i) & 1) else 0
    return chk
def bech32(hrp, data):
    acc, bits, out = 0, 0, []
    for b in data:
        acc = (acc << 8) | b; bits += 8
        while bits >= 5:
            bits -= 5; out.append((acc >> bits) & 31)
    if bits: out.append((acc << (5 - bits)) & 31)
    values = [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp] + out
    pm = polymod(values + [0] * 6) ^ 1
    out += [(pm >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[d] for d in out)
print(bech32("cosmos", hashlib.sha256(b"ics20-1\x00transfer/channel-0").digest()[:20]))
PY
}
voucher="ibc/$(printf 'transfer/channel-0/stake' | sha256sum | cut -c1-64 | tr a-f A-F)"
escrow_addr=$(escrow)
# caught_up: every transfer escrowed on either chain when it was called has been received on the other (the
# recovery mark after a fault).
caught_up() {
  local e0 e1
  e0=$(balance ibc-0 "$escrow_addr" stake); e1=$(balance ibc-1 "$escrow_addr" stake)
  for _ in $(seq 360); do
    if [ "$(balance ibc-1 "${receiver[ibc-1]}" "$voucher")" -ge "$e0" ] \
      && [ "$(balance ibc-0 "${receiver[ibc-0]}" "$voucher")" -ge "$e1" ]; then return 0; fi
    sleep 0.5
  done
  return 1
}
declare -A faults
recoveries=()
start=$(date +%s)
count=0
rand() { echo $(( $1 + RANDOM % ($2 - $1 + 1) )); }
pick() { local a=($1); echo "${a[$(( RANDOM % ${#a[@]} ))]}"; }
while :; do
  elapsed=$(( $(date +%s) - start ))
  if [ "$elapsed" -ge "$DURATION" ] && [ "$count" -ge "$MIN_FAULTS" ]; then break; fi
  kind=$(pick "$KINDS")
  chain=$(pick "ibc-0 ibc-1")
  echo "$(date +%s) fault $kind $chain" >> "$work/faults.log"
  case $kind in
    kill_relayd)
      kill -9 "$relayd_pid" 2>/dev/null || true; wait "$relayd_pid" 2>/dev/null || true
      sleep "$(rand 1 3)"; start_relayd ;;
    stop_node)
      kill -STOP "${node_pid[$chain]}"; sleep "$(rand 5 15)"; kill -CONT "${node_pid[$chain]}" ;;
    cut_rpc)
      echo cut > "$work/$chain.proxy"; sleep "$(rand 5 15)"; echo pass > "$work/$chain.proxy" ;;
    slow_rpc)
      echo "slow $(rand 300 1500)" > "$work/$chain.proxy"; sleep 10; echo pass > "$work/$chain.proxy" ;;
    restart_node)
      kill -9 "${node_pid[$chain]}" 2>/dev/null || true; wait "${node_pid[$chain]}" 2>/dev/null || true
      sleep "$(rand 1 3)"; start_node "$chain" ;;
    corrupt)
      echo "corrupt $(pick 'hash value')" > "$work/$chain.proxy"; sleep 5; echo pass > "$work/$chain.proxy" ;;
  esac
  faults[$kind]=$(( ${faults[$kind]:-0} + 1 ))
  count=$(( count + 1 ))
  t0=$(now)
  for _ in $(seq 1200); do healthy && break; sleep 0.1; done
  healthy || { echo "relayd not healthy 120 s after fault $count ($kind $chain)"; tail -40 "$work/relayd.log"; exit 1; }
  caught_up || { echo "relayd did not catch up within 180 s of fault $count ($kind $chain)"; tail -40 "$work/relayd.log"; exit 1; }
  recoveries+=("$(python3 -c "print(f'{$(now) - $t0:.1f}')")")
  sleep "$(rand 2 6)"
done

touch "$work/stop-traffic"
wait "$traffic_pid" 2>/dev/null || true
echo "== $count faults in $(( $(date +%s) - start )) s; waiting for relayd to drain"

drained=no
for _ in $(seq 300); do
  p0=$(pending ibc-0); p1=$(pending ibc-1)
  if [ "$p0" = 0 ] && [ "$p1" = 0 ]; then drained=yes; break; fi
  sleep 2
done
ok=yes
[ "$drained" = yes ] || ok=no
printf '\n| direction | sender saw sent | escrowed on source | vouchers on destination | pending at end |\n|---|---|---|---|---|\n'
total=0
for src in ibc-0 ibc-1; do
  dst=$(other "$src")
  sent=$(awk '{ s += $1 } END { print s + 0 }' "$work/sent.$src")
  held=$(balance "$src" "$escrow_addr" stake)
  got=$(balance "$dst" "${receiver[$dst]}" "$voucher")
  echo "| $src → $dst | $sent | $held | $got | $(pending "$src") |"
  [ "$held" = "$got" ] || ok=no
  [ "$held" -ge "$sent" ] || ok=no
  total=$(( total + got ))
done
printf '\n| fault | injected |\n|---|---|\n'
for k in $KINDS; do echo "| $k | ${faults[$k]:-0} |"; done
echo "| answers the proxy changed | $(grep -c 'corrupted one answer' "$work/proxy.log" || true) |"
echo "| relayd WARN/ERROR lines naming a refused proof or header | $(grep -E 'WARN|ERROR' "$work/relayd.log" | grep -ciE 'proof|verif|header' || true) |"
sorted=$(printf '%s\n' "${recoveries[@]}" | sort -n)
echo
echo "faults: $count; packets relayed (received, each acknowledged): $total"
echo "recovery (every transfer escrowed when a fault ended received on the other chain): median $(echo "$sorted" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') s, max $(echo "$sorted" | tail -1) s"
echo "relayd RSS (MB), first and last three samples: $(head -3 "$work/rss" | awk '{printf "%.0f ", $2/1024}')… $(tail -3 "$work/rss" | awk '{printf "%.0f ", $2/1024}')"
echo "relayd RSS max (MB): $(awk '{ if ($2 > m) m = $2 } END { printf "%.0f", m/1024 }' "$work/rss")"
echo "node restarts: ${faults[restart_node]:-0}; relayd restarts: ${faults[kill_relayd]:-0}; work dir: $work"
if [ "$ok" = yes ]; then echo "SOAK PASSED: 0 lost, 0 pending"; else echo "SOAK FAILED"; exit 1; fi
