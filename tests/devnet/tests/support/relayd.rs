//! A relayd configuration for two devnet chains joined by `connect_transfer`, and their relayer key files.

use std::path::{Path, PathBuf};

/// Writes `relayd.toml` relaying `channel` (on the first chain) both ways, and one key file per chain holding
/// its genesis `relayer` key; returns the config path and the key files as (chain id, file).
pub fn write(
    dir: &Path,
    chains: &[devnet::RunningChain],
    channel: &str,
) -> (PathBuf, Vec<(String, PathBuf)>) {
    let mut config = String::from(
        "[global]\ntimeout = \"10s\"\ndata_dir = \"data\"\n\n[supervision]\nrestart_intensity = 10\nrestart_period = \"30s\"\nbackoff_base = \"50ms\"\nbackoff_cap = \"1s\"\n",
    );
    let mut keys = Vec::new();
    for chain in chains {
        config.push_str(&format!(
            "\n[[chains]]\nid = \"{}\"\nrpc_addr = \"{}\"\naccount_prefix = \"cosmos\"\nkey_name = \"relayer\"\ngas_price = \"0.001stake\"\nstore_prefix = \"ibc\"\nmax_gas = 50000000\nmax_msg_num = 100\nmax_block_time = \"2s\"\nclient_ids = [\"07-tendermint-0\"]\n",
            chain.chain_id(),
            chain.rpc_url()
        ));
        let relayer = chain.genesis.account("relayer").expect("relayer account");
        let file = dir.join(format!("{}-relayer.json", chain.chain_id()));
        std::fs::write(
            &file,
            format!(
                "{{\"private_key\": \"{}\"}}",
                hex::encode(relayer.private_key)
            ),
        )
        .expect("key file");
        keys.push((chain.chain_id().to_string(), file));
    }
    config.push_str(&format!(
        "\n[[connections]]\nsrc = {{ chain_id = \"{}\", client_id = \"07-tendermint-0\" }}\ndest = {{ chain_id = \"{}\", client_id = \"07-tendermint-0\" }}\npaths = [{{ src_port = \"transfer\", src_channel = \"{channel}\", dest_port = \"transfer\" }}]\n",
        chains[0].chain_id(),
        chains[1].chain_id(),
    ));
    let path = dir.join("relayd.toml");
    std::fs::write(&path, config).expect("config");
    (path, keys)
}
