//! IBC through the real path: ibc-rs handlers run by simulation and in blocks, and their state proven
//! against the app hash of the next block.

use ibc::clients::tendermint::types::{
    AllowUpdate, ClientState as TmClientState, ConsensusState as TmConsensusState, TrustThreshold,
};
use ibc::core::client::types::Height as IbcHeight;
use ibc::core::commitment_types::commitment::CommitmentRoot;
use ibc::core::commitment_types::specs::ProofSpecs;
use ibc::core::host::types::identifiers::ChainId;
use ibc_proto::ibc::core::client::v1::MsgCreateClient as RawMsgCreateClient;

use super::*;

fn tm_client_msgs(g: &Genesis, signer: &str) -> cosmrs::Any {
    let counterparty = ChainId::new("counterparty-1").unwrap();
    let cs = TmClientState::new(
        counterparty,
        TrustThreshold::ONE_THIRD,
        std::time::Duration::from_secs(14 * 24 * 3600),
        std::time::Duration::from_secs(21 * 24 * 3600),
        std::time::Duration::from_secs(20),
        IbcHeight::new(1, 10).unwrap(),
        ProofSpecs::cosmos(),
        vec![],
        AllowUpdate {
            after_expiry: false,
            after_misbehaviour: false,
        },
    )
    .unwrap();
    let cons = TmConsensusState::new(
        CommitmentRoot::from_bytes(&[1u8; 32]),
        g.genesis_time,
        g.validator_set().hash(),
    );
    let raw = RawMsgCreateClient {
        client_state: Some(ibc::clients::tendermint::client_state::ClientState::from(cs).into()),
        consensus_state: Some(
            ibc::clients::tendermint::consensus_state::ConsensusState::from(cons).into(),
        ),
        signer: signer.to_owned(),
    };
    cosmrs::Any {
        type_url: "/ibc.core.client.v1.MsgCreateClient".into(),
        value: raw.encode_to_vec(),
    }
}

#[test]
fn simulate_runs_ibc_handlers_between_blocks() {
    let g = genesis();
    let mut app = App::new(&g).unwrap();
    let r = &g.accounts[0];
    run_block(&mut app, &g, &[]);
    let tx = sign(
        &r.signing_key(),
        vec![tm_client_msgs(&g, &r.address)],
        &opts(&g, 0, 0),
    );
    // Creating a client reads the host timestamp, i.e. the host consensus state of the block being built.
    let (gas, events) = app.simulate(&tx).unwrap();
    assert!(events.iter().any(|e| e.kind == "create_client"));
    // The provisional host consensus state is gone again: block 2 records its own.
    assert!(!app.lock().ibc.host_consensus_states.lock().contains_key(&2));
    let (res, _) = run_block(&mut app, &g, &[tx]);
    assert!(res[0].code.is_ok(), "{}", res[0].log);
    assert_eq!(res[0].gas_used as u64, gas);
}

#[test]
fn create_client_and_proof_verifies_against_next_app_hash() {
    let g = genesis();
    let mut app = App::new(&g).unwrap();
    let r = &g.accounts[0];
    let tx = sign(
        &r.signing_key(),
        vec![tm_client_msgs(&g, &r.address)],
        &opts(&g, 0, 0),
    );
    let hash0 = app.last_app_hash();
    let (res, hash1) = run_block(&mut app, &g, &[tx]);
    assert!(res[0].code.is_ok(), "{}", res[0].log);
    assert!(res[0].events.iter().any(|e| e.kind == "create_client"));
    // Another block changing state so that height 1's state is not the latest.
    let tx = sign(
        &r.signing_key(),
        vec![send_msg(&r.address, &g.accounts[1].address, 1)],
        &opts(&g, 1, 0),
    );
    let (res, hash2) = run_block(&mut app, &g, &[tx]);
    assert!(res[0].code.is_ok(), "{}", res[0].log);
    assert_ne!(hash1, hash2);

    let key = b"clients/07-tendermint-0/clientState";
    let q = app.query("store/ibc/key", key, 1, true);
    assert!(q.code.is_ok(), "{}", q.log);
    assert_eq!(q.height.value(), 1);
    assert!(!q.value.is_empty());
    let ops = q.proof.expect("proof requested");
    assert_eq!(ops.ops.len(), 2);
    assert_eq!(ops.ops[0].field_type, "ics23:jmt");
    assert_eq!(ops.ops[1].key, b"ibc");
    let spec = jmt::ics23_spec();
    let inner = ics23::CommitmentProof::decode(ops.ops[0].data.as_slice()).unwrap();
    let outer = ics23::CommitmentProof::decode(ops.ops[1].data.as_slice()).unwrap();
    let Some(ics23::commitment_proof::Proof::Exist(ex)) = &inner.proof else {
        panic!("existence proof expected")
    };
    let ibc_root = ics23::calculate_existence_root::<ics23::HostFunctionsManager>(ex).unwrap();
    assert!(ics23::verify_membership::<ics23::HostFunctionsManager>(
        &inner, &spec, &ibc_root, key, &q.value
    ));
    assert!(ics23::verify_membership::<ics23::HostFunctionsManager>(
        &outer, &spec, &hash1, b"ibc", &ibc_root
    ));
    // The same proof does not verify against other app hashes.
    for other in [&hash0, &hash2] {
        assert!(!ics23::verify_membership::<ics23::HostFunctionsManager>(
            &outer, &spec, other, b"ibc", &ibc_root
        ));
    }

    // gRPC listing sees the client.
    let resp = app.query(
        "/ibc.core.client.v1.Query/ClientStates",
        &ibc_proto::ibc::core::client::v1::QueryClientStatesRequest::default().encode_to_vec(),
        0,
        false,
    );
    assert!(resp.code.is_ok(), "{}", resp.log);
    let list =
        ibc_proto::ibc::core::client::v1::QueryClientStatesResponse::decode(resp.value.as_ref())
            .unwrap();
    assert_eq!(list.client_states.len(), 1);
    assert_eq!(list.client_states[0].client_id, "07-tendermint-0");

    // A key that does not exist: empty value, and a proof of its absence under the same IBC root.
    let absent = b"clients/07-tendermint-9/clientState";
    let q = app.query("store/ibc/key", absent, 1, true);
    assert!(q.code.is_ok(), "{}", q.log);
    assert!(q.value.is_empty());
    let ops = q.proof.expect("proof requested");
    let inner = ics23::CommitmentProof::decode(ops.ops[0].data.as_slice()).unwrap();
    let outer = ics23::CommitmentProof::decode(ops.ops[1].data.as_slice()).unwrap();
    assert!(ics23::verify_non_membership::<ics23::HostFunctionsManager>(
        &inner, &spec, &ibc_root, absent
    ));
    assert!(
        !ics23::verify_non_membership::<ics23::HostFunctionsManager>(&inner, &spec, &ibc_root, key)
    );
    assert!(ics23::verify_membership::<ics23::HostFunctionsManager>(
        &outer, &spec, &hash1, b"ibc", &ibc_root
    ));
}

#[test]
fn pruned_heights_get_a_clear_error_and_held_ones_still_prove() {
    let g = genesis();
    let mut app = App::new(&g).unwrap();
    for _ in 0..super::STORE_VERSIONS_RETAINED + 5 {
        run_block(&mut app, &g, &[]);
    }
    let latest = app.last_committed_height();
    let q = app.query("store/ibc/key", b"nextClientSequence", 1, true);
    assert_eq!(q.code.value(), 18, "{}", q.log);
    assert!(q.log.contains("version does not exist"), "{}", q.log);
    // The oldest height still held answers with a proof to the app hash of the header after it.
    let oldest = latest + 1 - super::STORE_VERSIONS_RETAINED;
    let q = app.query("store/ibc/key", b"nextClientSequence", oldest, true);
    assert!(q.code.is_ok(), "{}", q.log);
    assert!(q.proof.is_some());
    let q = app.query("store/ibc/key", b"nextClientSequence", oldest - 1, true);
    assert_eq!(q.code.value(), 18, "{}", q.log);
}
