#!/usr/bin/env bash
# Independent check of devnet with Hermes, the reference Rust relayer: two devnet chains, Hermes creates clients,
# a connection and a transfer channel, relays an ICS-20 transfer, and the receiver's voucher balance must appear.
# Skipped (exit 0) when Hermes is not installed. Install it with:
#   apt-get install -y protobuf-compiler libclang-dev
#   cargo install ibc-relayer-cli --version 1.10.5 --locked
set -euo pipefail
cd "$(dirname "$0")/../.."

HERMES=${HERMES:-$(command -v hermes || true)}
if [ -z "$HERMES" ]; then
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

cargo build -q -p devnet
devnet=target/debug/devnet

declare -A rpc grpc
for chain in ibc-0 ibc-1; do
  rpc[$chain]=$(free_port)
  grpc[$chain]=$(free_port)
  "$devnet" --chain-id "$chain" --rpc-addr "127.0.0.1:${rpc[$chain]}" --grpc-addr "127.0.0.1:${grpc[$chain]}" \
    --block-time 500ms --home "$work/$chain" > "$work/$chain.log" 2>&1 &
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
max_block_time = '10s'
trusting_period = '14days'
trust_threshold = '1/3'
compat_mode = '0.38'
proof_specs = '''[$spec, $spec]'''
TOML
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['mnemonic'])" "$work/$chain/keys/relayer.json" > "$work/$chain.mnemonic"
  hermes --config "$config" keys add --chain "$chain" --mnemonic-file "$work/$chain.mnemonic" > /dev/null
done

hermes --config "$config" create channel --a-chain ibc-0 --b-chain ibc-1 --a-port transfer --b-port transfer \
  --new-client-connection --yes > "$work/create.log" 2>&1 || { tail -30 "$work/create.log"; echo "FAIL: create channel"; exit 1; }

hermes --config "$config" start > "$work/start.log" 2>&1 &
pids+=($!)

receiver=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['address'])" "$work/ibc-1/keys/user2.json")
hermes --config "$config" tx ft-transfer --dst-chain ibc-1 --src-chain ibc-0 --src-port transfer \
  --src-channel channel-0 --amount 1000 --denom stake --receiver "$receiver" --timeout-seconds 120 > "$work/transfer.log" 2>&1

# ibc/<sha256("transfer/channel-0/stake")>
voucher="ibc/$(printf 'transfer/channel-0/stake' | sha256sum | cut -c1-64 | tr a-f A-F)"
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
for _ in $(seq 120); do
  got=$(balance "${rpc[ibc-1]}" "$receiver" "$voucher")
  [ "$got" = "1000" ] && break
  sleep 0.5
done
if [ "$got" != "1000" ]; then
  tail -40 "$work/start.log"
  echo "FAIL: receiver holds '$got' $voucher, expected 1000"
  exit 1
fi
echo "PASS: Hermes created a channel between two devnet chains and relayed 1000stake; receiver holds 1000 $voucher"
