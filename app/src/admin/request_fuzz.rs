//! Property tests of the admin API's request parsing, through the functions its handlers call: query strings
//! (`/packets`), path parts (`/packets/{chain}/{port}/{channel}/{sequence}`), `POST /clear` bodies and the
//! `Authorization` and authorisation headers. Any request gets a 4xx answer or a parsed request, never a panic;
//! no wrong token is ever admitted.
//!
//! `PROPTEST_CASES` raises the number of cases for soak runs (`benches/fuzz.sh`).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use proptest::prelude::*;

use super::auth::{bearer, Gate};
use super::control::parse_clear;
use super::filter::{PacketFilter, MAX_LIMIT};
use super::ops::MAX_CLEAR_SEQUENCES;
use super::{packet_key, query_pairs};

fn cases(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Query strings as an HTTP client may send them: the characters a request target may hold, percent escapes
/// (of any byte, not only UTF-8), and the filter's own keys and values.
fn query() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("chain=".to_owned()),
            Just("channel=".to_owned()),
            Just("state=".to_owned()),
            Just("limit=".to_owned()),
            Just("pending".to_owned()),
            Just("acknowledged".to_owned()),
            Just("ibc-0".to_owned()),
            Just("10000".to_owned()),
            Just("10001".to_owned()),
            Just("18446744073709551616".to_owned()),
            Just("&".to_owned()),
            Just("=".to_owned()),
            Just("+".to_owned()),
            "%[0-9A-Fa-f]{2}",
            "%[0-9A-Za-z]{0,2}",
            "[A-Za-z0-9._~!$'()*,;:@/?-]{0,12}",
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

/// The request, if its target is one an HTTP server would route at all.
fn request(query: &str) -> Option<actix_web::HttpRequest> {
    let uri: actix_web::http::Uri = format!("/packets?{query}").parse().ok()?;
    Some(TestRequest::get().uri(&uri.to_string()).to_http_request())
}

/// A `POST /clear` body: JSON of the request's shape with fields right or wrong, or any text.
fn clear_body() -> impl Strategy<Value = Vec<u8>> {
    let text = prop_oneof![
        Just("ibc-0".to_owned()),
        Just(String::new()),
        Just("transfer".to_owned()),
        Just("channel-0".to_owned()),
        "\\PC{0,12}",
    ];
    let sequences = prop_oneof![
        Just(None),
        Just(Some(serde_json::json!([]))),
        Just(Some(serde_json::json!([-1]))),
        Just(Some(serde_json::json!([1.5]))),
        Just(Some(serde_json::json!("1-5"))),
        prop::collection::vec(any::<u64>(), 1..20).prop_map(|s| Some(serde_json::json!(s))),
    ];
    prop_oneof![
        4 => (text.clone(), text.clone(), text, sequences, any::<bool>()).prop_map(|(chain, port, channel, seq, extra)| {
            let mut body = serde_json::json!({"chain": chain, "port": port, "channel": channel});
            if let Some(s) = seq {
                body["sequences"] = s;
            }
            if extra {
                body["unknown"] = serde_json::json!(1);
            }
            body.to_string().into_bytes()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..200),
        1 => "\\PC{0,200}".prop_map(String::into_bytes),
    ]
}

const TOKEN: &str = "0123456789abcdef0123456789abcdef-admin";

proptest! {
    #![proptest_config(cases(2000))]

    /// Any query string: a 400 naming the problem, or a filter within its bounds.
    #[test]
    fn packet_queries_parse_or_are_refused(q in query()) {
        let Some(req) = request(&q) else { return Ok(()) };
        match query_pairs(&req) {
            Ok(pairs) => match PacketFilter::parse(&pairs) {
                Ok(f) => prop_assert!((1..=MAX_LIMIT).contains(&f.limit)),
                Err(reason) => prop_assert!(!reason.is_empty()),
            },
            Err(e) => prop_assert_eq!(e.status, StatusCode::BAD_REQUEST),
        }
    }

    /// Any path parts (as the router decodes them): a packet key or a 400.
    #[test]
    fn packet_paths_parse_or_are_refused(parts in ("\\PC{0,20}", "\\PC{0,20}", "\\PC{0,20}", prop_oneof!["[0-9]{1,22}", "\\PC{0,8}"])) {
        match packet_key(parts.clone()) {
            Ok(key) => prop_assert_eq!(Ok(key.sequence.0), parts.3.parse::<u64>()),
            Err(e) => prop_assert_eq!(e.status, StatusCode::BAD_REQUEST),
        }
    }

    /// Any `POST /clear` body: a request within the bounds, or a 400.
    #[test]
    fn clear_bodies_parse_or_are_refused(body in clear_body()) {
        match parse_clear(&body) {
            Ok((request, chain)) => {
                prop_assert_eq!(chain.as_str(), request.chain.as_str());
                if let Some(s) = &request.sequences {
                    prop_assert!(!s.is_empty() && s.len() <= MAX_CLEAR_SEQUENCES);
                }
            }
            Err(e) => prop_assert_eq!(e.status, StatusCode::BAD_REQUEST),
        }
    }

    /// Any `Authorization` and authorisation header values: never admitted without the token and a nonce it was
    /// issued; the right token with a fresh nonce is admitted once.
    #[test]
    fn only_the_token_and_its_nonce_are_admitted(
        header in prop_oneof![Just(format!("Bearer {TOKEN}")), Just(format!("bearer  {TOKEN} ")), "\\PC{0,60}", "Bearer \\PC{0,40}"],
        nonce in prop_oneof![Just(None), "\\PC{0,40}".prop_map(Some)],
        source in any::<[u8; 4]>(),
    ) {
        let mut gate = Gate::new(Some(TOKEN.to_owned()));
        let now = Instant::now();
        let source = IpAddr::from(source);
        let presented = bearer(Some(&header));
        let right = presented == Some(TOKEN);
        let admitted = gate.admit(source, presented, nonce.as_deref(), now).is_ok();
        // No nonce was issued yet, so nothing is admitted.
        prop_assert!(!admitted);
        match gate.issue(source, presented, [9; 16], now + Duration::from_millis(1)) {
            Ok(issued) => {
                prop_assert!(right);
                prop_assert!(gate.admit(source, presented, Some(&issued), now + Duration::from_millis(2)).is_ok());
                prop_assert!(gate.admit(source, presented, Some(&issued), now + Duration::from_millis(3)).is_err());
            }
            Err(_) => prop_assert!(!right),
        }
    }
}
