#!/usr/bin/env bash
# Independent check of devnet with Hermes, the reference Rust relayer, and of relayd beside it on one path:
# 1. Hermes creates clients, a connection and a transfer channel between two devnet chains and relays ICS-20
#    transfers both ways;
# 2. with Hermes stopped, transfers are left pending both ways and relayd clears them;
# 3. with relayd stopped, transfers are left pending both ways and Hermes clears them;
# 4. both relayers run on the same channel while transfers go both ways.
# After each step every receiver holds exactly what was sent to it and nothing is pending on either end: two
# relayers on one path neither lose nor double-spend a packet.
# Without Hermes the check is skipped (exit 0), except in CI (`CI` set), where it fails. Install Hermes with:
#   apt-get install -y protobuf-compiler libclang-dev
#   cargo install ibc-relayer-cli --version 1.10.5 --locked
set -euo pipefail
cd "$(dirname "$0")/../.."

HERMES=${HERMES:-$(command -v hermes || true)}
if [ -z "$HERMES" ]; then
  if [ -n "${CI:-}" ]; then
    echo "FAIL: hermes not installed (CI must run this check; .ci/run installs it)"
    exit 1
  fi
  echo "SKIP: hermes not installed"
  exit 0
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Hermes keeps keys under $HOME/.hermes: give it a home of its own so runs never share or clobber keys.
hermes() { HOME="$work" "$HERMES" "$@"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

cargo build -q -p devnet -p relayd
target="${CARGO_TARGET_DIR:-target}"
devnet="$target/debug/devnet"
relayd_bin="$target/debug/relayd"

declare -A rpc grpc
for chain in ibc-0 ibc-1; do
  rpc[$chain]=$(free_port)
  grpc[$chain]=$(free_port)
  "$devnet" --chain-id "$chain" --rpc-addr "127.0.0.1:${rpc[$chain]}" --grpc-addr "127.0.0.1:${grpc[$chain]}" \
    --block-time 500ms --accounts 3 --home "$work/$chain" > "$work/$chain.log" 2>&1 &
  pids+=($!)
done
for chain in ibc-0 ibc-1; do
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:${rpc[$chain]}/status" > /dev/null && break
    sleep 0.1
  done
done

# The devnet's stores are Jellyfish Merkle trees at both proof levels (the `jmt` crate's ICS-23 spec, as Penumbra's),
# and its IBC prefix is "ibc" (docs/devnet.md); Hermes takes the proof specs from its config.
leaf_prefix=$(printf 'JMT::LeafNode' | base64 -w0)
placeholder=$(printf 'SPARSE_MERKLE_PLACEHOLDER_HASH__' | base64 -w0)
spec="{\"leaf_spec\":{\"hash\":1,\"prehash_key\":1,\"prehash_value\":1,\"length\":0,\"prefix\":\"$leaf_prefix\"},\"inner_spec\":{\"child_order\":[0,1],\"child_size\":32,\"min_prefix_length\":16,\"max_prefix_length\":16,\"empty_child\":\"$placeholder\",\"hash\":1},\"max_depth\":64,\"min_depth\":0,\"prehash_key_before_comparison\":true}"

config="$work/hermes.toml"
cat > "$config" <<TOML
[global]
log_level = 'info'
[mode.clients]
enabled = true
refresh = true
misbehaviour = false
[mode.connections]
enabled = true
[mode.channels]
enabled = true
[mode.packets]
enabled = true
clear_interval = 10
clear_on_start = true
[rest]
enabled = false
host = '127.0.0.1'
port = $(free_port)
[telemetry]
enabled = false
host = '127.0.0.1'
port = $(free_port)
TOML
for chain in ibc-0 ibc-1; do
  cat >> "$config" <<TOML
[[chains]]
id = '$chain'
type = 'CosmosSdk'
rpc_addr = 'http://127.0.0.1:${rpc[$chain]}'
grpc_addr = 'http://127.0.0.1:${grpc[$chain]}'
event_source = { mode = 'pull', interval = '500ms' }
account_prefix = 'cosmos'
key_name = 'relayer'
store_prefix = 'ibc'
default_gas = 300000
max_gas = 3000000
gas_price = { price = 0.001, denom = 'stake' }
gas_multiplier = 1.3
clock_drift = '5s'
max_block_time = '3s'
trusting_period = '14days'
trust_threshold = '1/3'
compat_mode = '0.38'
proof_specs = '''[$spec, $spec]'''
TOML
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['mnemonic'])" "$work/$chain/keys/relayer.json" > "$work/$chain.mnemonic"
  hermes --config "$config" keys add --chain "$chain" --mnemonic-file "$work/$chain.mnemonic" > /dev/null
  # Transfers are sent from user3 (Hermes key `sender`): a `tx ft-transfer` signing with the running Hermes's own
  # account would race it for the account sequence.
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['mnemonic'])" "$work/$chain/keys/user3.json" > "$work/$chain-user3.mnemonic"
  hermes --config "$config" keys add --chain "$chain" --key-name sender --mnemonic-file "$work/$chain-user3.mnemonic" > /dev/null
done

hermes --config "$config" create channel --a-chain ibc-0 --b-chain ibc-1 --a-port transfer --b-port transfer \
  --new-client-connection --yes > "$work/create.log" 2>&1 || { tail -30 "$work/create.log"; echo "FAIL: create channel"; exit 1; }

start_hermes() {
  hermes --config "$config" start >> "$work/hermes-start.log" 2>&1 &
  hermes_pid=$!
  pids+=($hermes_pid)
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# relayd signs with user1 on both chains (Hermes signs with relayer): two relayers never share an account.
admin_port=$(free_port)
cat > "$work/relayd.toml" <<TOML
[global]
data_dir = "data"
[admin]
listen_addr = "127.0.0.1:$admin_port"
TOML
for chain in ibc-0 ibc-1; do
  cat >> "$work/relayd.toml" <<TOML

[[chains]]
id = "$chain"
rpc_addr = "http://127.0.0.1:${rpc[$chain]}"
account_prefix = "cosmos"
key_name = "relayd"
gas_price = "0.001stake"
store_prefix = "ibc"
proof_specs = ["jmt", "jmt"]
max_gas = 50000000
max_msg_num = 50
max_block_time = "2s"
client_ids = ["07-tendermint-0"]
TOML
  python3 - "$work/$chain/keys/user1.json" "$work/$chain-relayd.json" <<'PY'
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
  # `keys add` names the key after the chain's key_name.
  "$relayd_bin" -c "$work/relayd.toml" keys add --chain "$chain" --key-file "$work/$chain-relayd.json" > /dev/null
done
start_relayd() {
  "$relayd_bin" --log-format text -c "$work/relayd.toml" start >> "$work/relayd.log" 2>&1 &
  relayd_pid=$!
  pids+=($relayd_pid)
}

# Both chains' first channel is channel-0, so a voucher has the same denom on either chain:
# ibc/<sha256("transfer/channel-0/stake")>
voucher="ibc/$(printf 'transfer/channel-0/stake' | sha256sum | cut -c1-64 | tr a-f A-F)"
receiver_on() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['address'])" "$work/$1/keys/user2.json"; }
declare -A receiver expected
receiver[ibc-0]=$(receiver_on ibc-0)
receiver[ibc-1]=$(receiver_on ibc-1)
expected[ibc-0]=0
expected[ibc-1]=0
balance() {
  python3 - "$1" "$2" "$3" <<'PY'
import base64, json, sys, urllib.request
port, addr, denom = sys.argv[1:]
# QueryBalanceRequest { address = 1, denom = 2 }
req = bytes([0x0a, len(addr)]) + addr.encode() + bytes([0x12, len(denom)]) + denom.encode()
url = f"http://127.0.0.1:{port}/abci_query?path=%22/cosmos.bank.v1beta1.Query/Balance%22&data=0x{req.hex()}"
value = base64.b64decode(json.load(urllib.request.urlopen(url))["result"]["response"].get("value") or "")
# QueryBalanceResponse { balance = 1: Coin { denom = 1, amount = 2 } }; the amount is the last string.
i = value.rfind(b"\x12")
print(value[i + 2:].decode() if i > 0 else "0")
PY
}
other() { [ "$1" = ibc-0 ] && echo ibc-1 || echo ibc-0; }

# send SRC N AMOUNT: N transfers of AMOUNT stake from user3 on SRC to user2 on the other chain, one transaction.
send() {
  local src=$1 dst n=$2 amount=$3
  dst=$(other "$src")
  hermes --config "$config" tx ft-transfer --src-chain "$src" --dst-chain "$dst" --key-name sender --src-port transfer \
    --src-channel channel-0 --amount "$amount" --denom stake --receiver "${receiver[$dst]}" \
    --number-msgs "$n" --timeout-seconds 600 >> "$work/transfer.log" 2>&1 \
    || { tail -20 "$work/transfer.log"; echo "FAIL: transfer from $src"; exit 1; }
  expected[$dst]=$(( ${expected[$dst]} + n * amount ))
}

# settle STEP: every receiver holds exactly what was sent to it, and nothing is pending on either end.
settle() {
  local step=$1 chain got pending
  for chain in ibc-0 ibc-1; do
    got=
    for _ in $(seq 240); do
      got=$(balance "${rpc[$chain]}" "${receiver[$chain]}" "$voucher")
      [ "$got" = "${expected[$chain]}" ] && break
      sleep 0.5
    done
    if [ "$got" != "${expected[$chain]}" ]; then
      tail -30 "$work/hermes-start.log"; tail -30 "$work/relayd.log" 2>/dev/null || true
      echo "FAIL ($step): user2 on $chain holds '$got' $voucher, expected ${expected[$chain]}"
      exit 1
    fi
  done
  for chain in ibc-0 ibc-1; do
    for _ in $(seq 120); do
      pending=$("$relayd_bin" -c "$work/relayd.toml" query packet pending "$chain" transfer channel-0 --json \
        | python3 -c 'import json,sys; v=json.load(sys.stdin); print(len(v["unreceived_packets"]) + len(v["unrelayed_acks"]))')
      [ "$pending" = 0 ] && break
      sleep 0.5
    done
    if [ "$pending" != 0 ]; then
      echo "FAIL ($step): $pending packets or acks still pending from $chain"
      exit 1
    fi
  done
  echo "ok ($step): user2 holds ${expected[ibc-1]} on ibc-1 and ${expected[ibc-0]} on ibc-0; nothing pending"
}

# 1. Hermes alone.
start_hermes
send ibc-0 1 1000
send ibc-1 1 1000
settle "Hermes relays both ways"

# 2. Hermes stopped: packets pile up; relayd clears them on start.
stop "$hermes_pid"
send ibc-0 20 3
send ibc-1 20 3
start_relayd
settle "relayd clears what Hermes left pending"

# 3. relayd stopped: packets pile up; Hermes clears them on start.
stop "$relayd_pid"
send ibc-0 20 5
send ibc-1 20 5
start_hermes
settle "Hermes clears what relayd left pending"

# 4. Both relayers on one channel.
start_relayd
for round in 1 2 3; do
  send ibc-0 10 7
  send ibc-1 10 7
done
settle "Hermes and relayd relay side by side"
# Packets the other relayer delivered first are no-ops on the chain or refused as already relayed; neither may
# leave a packet failed in relayd's records.
failed=$(curl -sf "http://127.0.0.1:$admin_port/metrics" \
  | awk '/^relayd_packets\{/ && /state="failed"/ { n += $NF } END { print n + 0 }')
if [ "$failed" != 0 ]; then
  tail -40 "$work/relayd.log"
  echo "FAIL: relayd recorded $failed failed packets while relaying beside Hermes"
  exit 1
fi
echo "PASS: Hermes and relayd each relayed and cleared the other's pending packets on one devnet channel; balances exact, nothing pending"
