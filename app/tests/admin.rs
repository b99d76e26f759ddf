//! The admin HTTP server as operators use it: `relayd start` relaying between two devnet chains while real
//! HTTP requests read its actors, chains, packets and metrics, follow its event stream, and start clearing
//! operations with and without authorisation.

#[path = "../../tests/devnet/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[allow(dead_code)]
mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::chain::Wallet;
use support::handshake::connect_transfer;
use support::packet::{transfers, TRANSFER_PORT};

use common::{add_keys, eventually, log_has, BIN};
const TOKEN: &str = "s3cret-admin-token-of-32-bytes-at-least";
const PER_DIRECTION: usize = 20;

struct Relayd(Child);

impl Drop for Relayd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Every response body the test saw, checked at the end for key material.
struct Api {
    http: reqwest::Client,
    base: String,
    seen: std::sync::Mutex<Vec<String>>,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> (StatusCode, String) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.expect("admin server answers");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        self.seen.lock().unwrap().push(text.clone());
        (status, text)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, t) = self.call(reqwest::Method::GET, path, &[], None).await;
        (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
    }

    async fn get_ok(&self, path: &str) -> Value {
        let (s, v) = self.get(path).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        v
    }

    async fn post(&self, path: &str, headers: &[(&str, &str)], body: Value) -> (StatusCode, Value) {
        let (s, t) = self
            .call(reqwest::Method::POST, path, headers, Some(body.to_string()))
            .await;
        (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
    }

    async fn authorisation(&self) -> String {
        let bearer = format!("Bearer {TOKEN}");
        let (s, v) = self
            .post("/authorisations", &[("authorization", &bearer)], json!({}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["authorisation"].as_str().unwrap().to_owned()
    }

    async fn metrics(&self) -> String {
        let (s, t) = self.call(reqwest::Method::GET, "/metrics", &[], None).await;
        assert_eq!(s, StatusCode::OK);
        t
    }
}

/// The value of the first sample whose line starts with `prefix` (name and labels).
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Two devnet chains joined by a transfer channel and `relayd start` relaying it, with the admin server on a
/// free port and a token file.
struct Service {
    chains: Vec<devnet::RunningChain>,
    a: support::handshake::End,
    b: support::handshake::End,
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    base_config: String,
    port: u16,
    runs: usize,
    secrets: Vec<String>,
    api: Api,
    relayd: Option<Relayd>,
}

impl Service {
    async fn start() -> Self {
        let chains = devnet::start_chains(
            2,
            &devnet::ChainOptions::local("ibc", Duration::from_millis(200)),
        )
        .await
        .unwrap();
        let (a, b) = connect_transfer(&chains).await;
        let dir = tempfile::tempdir().unwrap();
        let (config, keys) = support::relayd::write(dir.path(), &chains, &a.channel_id);
        let port = free_port();
        std::fs::write(dir.path().join("admin.token"), format!("{TOKEN}\n")).unwrap();
        // Token files must be private, as key files are.
        std::fs::set_permissions(
            dir.path().join("admin.token"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let base_config = std::fs::read_to_string(&config).unwrap();
        let mut secrets = Vec::new();
        for (_, file) in &keys {
            let key: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
            secrets.push(key["private_key"].as_str().unwrap().to_owned());
        }
        add_keys(&config, &keys);
        let api = Api {
            http: reqwest::Client::new(),
            base: format!("http://127.0.0.1:{port}"),
            seen: Default::default(),
        };
        let mut service = Self {
            chains,
            a,
            b,
            dir,
            config,
            base_config,
            port,
            runs: 0,
            secrets,
            api,
            relayd: None,
        };
        service
            .run(&format!(
                "listen_addr = \"127.0.0.1:{port}\"\ntoken_file = \"admin.token\"\n"
            ))
            .await;
        service
    }

    /// Starts relayd with `admin` as its `[admin]` section; returns its log file.
    async fn run(&mut self, admin: &str) -> std::path::PathBuf {
        std::fs::write(
            &self.config,
            format!("{}\n[admin]\n{admin}", self.base_config),
        )
        .unwrap();
        self.runs += 1;
        let log = self.dir.path().join(format!("relayd-{}.log", self.runs));
        self.relayd = Some(Relayd(
            Command::new(BIN)
                .env("RUST_LOG", "info")
                .args(["--log-format", "text", "-c"])
                .arg(&self.config)
                .arg("start")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap(),
        ));
        eventually("relayd started", || async {
            log_has(&log, "relayd started")
        })
        .await;
        assert!(log_has(&log, "admin server listening"));
        log
    }

    /// Stops relayd with SIGTERM; it must exit 0.
    fn stop(&mut self) {
        let mut relayd = self.relayd.take().expect("relayd runs");
        common::stop(&mut relayd.0);
    }

    /// Sends `n` transfers each way.
    async fn transfers(&self, n: usize) {
        let u1 = Wallet::genesis(&self.chains[0], "user1");
        let u2 = Wallet::genesis(&self.chains[1], "user2");
        let timeout = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            + 3_600_000_000_000;
        transfers(&self.a, &u1, &u2.address, 2, n, 20, timeout).await;
        transfers(&self.b, &u2, &u1.address, 2, n, 20, timeout).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_reports_and_drives_a_relaying_service() {
    let service = Service::start().await;
    let (api, a, config, secrets) = (&service.api, &service.a, &service.config, &service.secrets);

    // Liveness at once; readiness once every chain's actors run and a height was seen.
    let health = api.get_ok("/health").await;
    assert_eq!(health["status"], "ok");
    eventually("every chain ready", || async {
        api.get_ok("/health").await["ready"] == true
    })
    .await;
    let version = api.get_ok("/version").await;
    assert_eq!(version["name"], "relayd");
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    let data_dir = std::fs::canonicalize(service.dir.path().join("data")).unwrap();
    assert_eq!(version["data_dir"], data_dir.display().to_string());

    // The event stream is open before any packet moves.
    let mut events = api
        .http
        .get(format!("{}/events", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    assert!(events.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));

    service.transfers(PER_DIRECTION).await;

    // A clearing request while those packets are in flight: it finds what is still pending and follows it.
    let clear_body = json!({ "chain": "ibc-0", "port": TRANSFER_PORT, "channel": a.channel_id });
    let bearer = format!("Bearer {TOKEN}");
    let auth1 = api.authorisation().await;
    let (s, first) = api
        .post(
            "/clear",
            &[
                ("authorization", &bearer),
                ("x-relayd-authorisation", &auth1),
            ],
            clear_body.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{first}");
    let op_id = first["operation_id"].as_str().unwrap().to_owned();
    assert_eq!(first["created"], true);
    // The same request again: while the first runs it is returned instead of a second operation.
    let auth2 = api.authorisation().await;
    let (s, second) = api
        .post(
            "/clear",
            &[
                ("authorization", &bearer),
                ("x-relayd-authorisation", &auth2),
            ],
            clear_body.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{second}");
    if second["operation_id"] != first["operation_id"] {
        let op1 = api.get_ok(&format!("/operations/{op_id}")).await;
        let op2 = api
            .get_ok(&format!(
                "/operations/{}",
                second["operation_id"].as_str().unwrap()
            ))
            .await;
        assert_ne!(op1["status"], "running");
        assert!(op1["updated_ms"].as_u64() <= op2["created_ms"].as_u64());
    } else {
        assert_eq!(second["created"], false);
    }
    // A used authorisation does not work twice.
    let (s, v) = api
        .post(
            "/clear",
            &[
                ("authorization", &bearer),
                ("x-relayd-authorisation", &auth1),
            ],
            clear_body.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");

    // Lifecycle events and the clearing operation's updates arrive on the stream.
    let mut buffer = String::new();
    let found = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(chunk) = events.chunk().await.unwrap() {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            if buffer.contains("event: lifecycle\ndata: {\"type\":\"lifecycle\"")
                && buffer.contains("event: operation\ndata: {\"type\":\"operation\"")
            {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "{buffer}");
    drop(events);

    // Every packet acknowledged, as the packet listing reports it.
    eventually("every packet acknowledged", || async {
        let v = api.get_ok("/packets?state=acknowledged&limit=1").await;
        v["matched"] == 2 * PER_DIRECTION
    })
    .await;
    let listing = api
        .get_ok(&format!(
            "/packets?chain=ibc-0&channel={}&limit=5",
            a.channel_id
        ))
        .await;
    assert_eq!(listing["matched"], PER_DIRECTION);
    assert_eq!(listing["packets"].as_array().unwrap().len(), 5);

    // One packet's whole life.
    let trace = api
        .get_ok(&format!(
            "/packets/ibc-0/{TRANSFER_PORT}/{}/1",
            a.channel_id
        ))
        .await;
    assert_eq!(trace["state"], "acknowledged");
    assert_eq!(trace["dst_chain"], "ibc-1");
    let states: Vec<&str> = trace["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.first(), Some(&"detected"));
    assert_eq!(states.last(), Some(&"acknowledged"));
    assert!(states.contains(&"submitted"), "{states:?}");
    assert!(!trace["tx_hashes"].as_array().unwrap().is_empty());
    // A transaction named on a transition is one of the packet's transactions.
    for t in trace["history"].as_array().unwrap() {
        if let Some(h) = t["tx_hash"].as_str() {
            assert!(
                trace["tx_hashes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == h),
                "{trace}"
            );
        }
    }
    assert!(trace["data"].as_str().unwrap().contains("\"amount\":\"2\""));
    // The CLI shows the same timeline, through the running service.
    let out = Command::new(BIN)
        .arg("-c")
        .arg(config)
        .args([
            "packet",
            "trace",
            "ibc-0",
            TRANSFER_PORT,
            &a.channel_id,
            "1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains(&format!("packet ibc-0/{TRANSFER_PORT}/{}/1", a.channel_id)));
    assert!(printed.contains("acknowledged"), "{printed}");
    assert!(
        printed.contains(trace["tx_hashes"][0].as_str().unwrap()),
        "{printed}"
    );

    // The clearing operation ends with per-packet results.
    eventually("the clearing operation finished", || async {
        api.get_ok(&format!("/operations/{op_id}")).await["status"] != "running"
    })
    .await;
    let op = api.get_ok(&format!("/operations/{op_id}")).await;
    eprintln!("clearing operation: {op}");
    assert_eq!(op["status"], "succeeded", "{op}");
    assert_eq!(op["counts"]["done"], op["counts"]["total"], "{op}");
    assert_eq!(
        op["packets"].as_array().unwrap().len() as u64,
        op["counts"]["total"].as_u64().unwrap()
    );
    let all = api.get_ok("/operations").await;
    assert!(all["operations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["id"] == op_id.as_str()));

    // The supervision tree.
    let actors = api.get_ok("/actors").await;
    let actors = actors["actors"].as_array().unwrap();
    let find = |id: &str| actors.iter().find(|a| a["id"] == id).cloned();
    let coordinator = find("coordinator").expect("coordinator listed");
    assert!(coordinator["messages_handled"].as_u64().unwrap() > 0);
    for service in ["client_keeper", "misbehaviour_watcher"] {
        assert_eq!(find(service).expect("listed")["state"], "running");
    }
    // relayd's own client updates, judged by the misbehaviour watcher, are consistent.
    let misbehaviour = api.get_ok("/misbehaviour").await;
    assert_eq!(misbehaviour["reports"].as_array().unwrap().len(), 0);
    assert!(misbehaviour["consistent"].as_u64().is_some());
    for chain in ["ibc-0", "ibc-1"] {
        let sup = find(&format!("supervisor/{chain}")).expect("supervisor listed");
        assert_eq!(sup["state"], "running");
        for kind in ["chain_monitor", "querier", "light_client", "tx_submitter"] {
            let actor = find(&format!("{chain}/{kind}")).expect("chain actor listed");
            assert_eq!(actor["parent"], format!("supervisor/{chain}"));
            assert_eq!(actor["state"], "running");
            assert!(actor["started_ms"].as_u64().unwrap() > 0);
        }
        let submitter = find(&format!("{chain}/tx_submitter")).unwrap();
        assert!(submitter["messages_handled"].as_u64().unwrap() > 0);
        assert_eq!(submitter["mailbox_depth"], 0);
    }
    let one = api.get_ok("/actors/supervisor/ibc-0").await;
    assert_eq!(one["children"].as_array().unwrap().len(), 4);
    assert_eq!(api.get("/actors/nope").await.0, StatusCode::NOT_FOUND);

    // Chains: heights, clients and their expiry, node health, breaker, wallet.
    eventually("chains probed", || async {
        let v = api.get_ok("/chains/ibc-0").await;
        v["rpc"]["healthy"] == true && v["wallet"]["balance"].is_string()
    })
    .await;
    let chains_view = api.get_ok("/chains").await;
    for c in chains_view["chains"].as_array().unwrap() {
        assert!(c["height"].as_u64().unwrap() > 0);
        assert_eq!(c["circuit_breaker"]["state"], "closed");
        assert_eq!(c["degraded"], false);
        let client = &c["clients"][0];
        assert_eq!(client["client_id"], "07-tendermint-0");
        assert!(client["expires_in_secs"].as_i64().unwrap() > 0, "{client}");
        assert!(
            client["latest_height"].as_str().unwrap().starts_with("0-")
                || client["latest_height"].as_str().unwrap().contains('-')
        );
    }
    // The ClientKeeper's verdict on each hosted client (judged at start, before clearing).
    eventually("client health judged", || async {
        let v = api.get_ok("/chains/ibc-1").await;
        v["client_health"][0]["health"] == "fresh"
    })
    .await;
    let health = &api.get_ok("/chains/ibc-1").await["client_health"][0];
    assert_eq!(health["client_id"], "07-tendermint-0");
    assert_eq!(health["tracked"], "ibc-0");
    assert_eq!(health["alarm"], false);
    assert!(health["expires_in_secs"].as_i64().unwrap() > 0, "{health}");
    let ibc0 = api.get_ok("/chains/ibc-0").await;
    assert!(
        ibc0["wallet"]["balance"]
            .as_str()
            .unwrap()
            .parse::<u128>()
            .unwrap()
            > 0
    );
    assert_eq!(api.get("/chains/nope").await.0, StatusCode::NOT_FOUND);

    // Metrics: the families named in the issue, with values from this run.
    let m = api.metrics().await;
    for line in m.lines().filter(|l| l.starts_with("# TYPE")) {
        assert!(line.starts_with("# TYPE relayd_"), "{line}");
    }
    let acked = format!(
        "relayd_packets{{chain=\"ibc-0\",channel=\"{}\",state=\"acknowledged\"}}",
        a.channel_id
    );
    assert_eq!(sample(&m, &acked), Some(PER_DIRECTION as f64), "{m}");
    for (prefix, min) in [
        ("relayd_txs_submitted_total{chain=\"ibc-1\"}", 1.0),
        ("relayd_txs_confirmed_total{chain=\"ibc-1\"}", 1.0),
        ("relayd_tx_gas_used_total{chain=\"ibc-1\"}", 1.0),
        ("relayd_tx_messages_count{chain=\"ibc-1\"}", 1.0),
        ("relayd_relay_latency_seconds_count{chain=\"ibc-0\"", 1.0),
        (
            "relayd_rpc_request_duration_seconds_count{chain=\"ibc-0\"}",
            1.0,
        ),
        (
            "relayd_wallet_balance{chain=\"ibc-0\",denom=\"stake\",key=\"relayer\"}",
            1.0,
        ),
        (
            "relayd_client_expiry_seconds{chain=\"ibc-0\",client=\"07-tendermint-0\"}",
            1.0,
        ),
        ("relayd_chain_height{chain=\"ibc-1\"}", 1.0),
        ("relayd_lifecycle_events_total", 1.0),
    ] {
        let v = sample(&m, prefix).unwrap_or_else(|| panic!("{prefix} missing:\n{m}"));
        assert!(v >= min, "{prefix} = {v}");
    }
    for name in [
        "relayd_backlog_packets{",
        "relayd_backlog_oldest_sequence{",
        "relayd_actor_mailbox_depth{",
        "relayd_clear_operations_total{result=\"succeeded\"}",
        "relayd_packets_cleared_total{",
        "relayd_websocket_reconnects_total{chain=\"ibc-0\"}",
        "relayd_rpc_errors_total{chain=\"ibc-1\"}",
        "relayd_txs_failed_total{chain=\"ibc-0\"}",
    ] {
        assert!(m.contains(name), "{name} missing:\n{m}");
    }
    assert_eq!(
        sample(
            &m,
            &format!(
                "relayd_backlog_packets{{chain=\"ibc-0\",channel=\"{}\"}}",
                a.channel_id
            )
        ),
        Some(0.0)
    );

    // Malformed requests get 400 with a reason; unknown ids 404.
    let (s, v) = api
        .get(&format!(
            "/packets/ibc-0/{TRANSFER_PORT}/{}/abc",
            a.channel_id
        ))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("sequence"));
    let (s, _) = api
        .get(&format!(
            "/packets/ibc-0/{TRANSFER_PORT}/{}/99999",
            a.channel_id
        ))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = api.get("/packets?state=lost").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("state"));
    assert_eq!(api.get("/operations/op-999").await.0, StatusCode::NOT_FOUND);
    assert_eq!(api.get("/no/such/endpoint").await.0, StatusCode::NOT_FOUND);

    // Mutations: no token, a wrong token, no authorisation, bad bodies, unknown channels, rate limit.
    let (s, _) = api.post("/clear", &[], clear_body.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = api
        .post(
            "/authorisations",
            &[("authorization", "Bearer wrong")],
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = api
        .post("/clear", &[("authorization", &bearer)], clear_body.clone())
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = api
        .post(
            "/clear",
            &[("authorization", &bearer)],
            json!({ "chain": "ibc-0" }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("port"), "{v}");
    let (s, v) = api
        .post(
            "/clear",
            &[("authorization", &bearer)],
            json!({ "chain": "ibc-0", "port": TRANSFER_PORT, "channel": "channel-77" }),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, _) = api.get("/dead-letters").await;
    assert_eq!(s, StatusCode::OK);
    let auth = api.authorisation().await;
    let (s, v) = api
        .post(
            &format!(
                "/dead-letters/ibc-0/{TRANSFER_PORT}/{}/1/retry",
                a.channel_id
            ),
            &[
                ("authorization", &bearer),
                ("x-relayd-authorisation", &auth),
            ],
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let mut limited = None;
    for _ in 0..15 {
        let resp = api
            .http
            .post(format!("{}/authorisations", api.base))
            .header("authorization", &bearer)
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(resp.headers().get("retry-after").is_some());
            break;
        }
    }
    assert_eq!(limited, Some(true), "the token was never rate-limited");

    // The dashboard and its assets come from the binary.
    let (s, page) = api.call(reqwest::Method::GET, "/", &[], None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("/assets/dashboard.js") && !page.contains("http"));
    let (s, _) = api
        .call(reqwest::Method::GET, "/assets/dashboard.js", &[], None)
        .await;
    assert_eq!(s, StatusCode::OK);

    // Guessing tokens: after a few wrong ones this source is refused with 429 and Retry-After, even with the
    // right token, without the guess being looked at.
    let mut throttled = None;
    for i in 0..10 {
        let guess = format!("Bearer guess-{i}");
        let resp = api
            .http
            .post(format!("{}/authorisations", api.base))
            .header("authorization", &guess)
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            break;
        }
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    assert!(
        throttled.is_some_and(|s| s > 0),
        "guesses were never throttled"
    );
    let resp = api
        .http
        .post(format!("{}/authorisations", api.base))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);

    // Nothing the server said contains key material.
    for body in api.seen.lock().unwrap().iter() {
        for secret in secrets {
            assert!(!body.contains(secret.as_str()));
        }
    }
    let mut service = service;
    for chain in std::mem::take(&mut service.chains) {
        chain.shutdown().await;
    }
}

/// Runs the browser with `extra` arguments against `url`; returns its stdout.
fn chromium(browser: &str, profile: &Path, extra: &[String], url: &str) -> String {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1280,1800",
            // Lets the page's first fetches run before the DOM is dumped or the screenshot taken, and ends before
            // the page opens its event stream (an open stream would stop the browser's virtual clock).
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("the browser runs");
    assert!(
        out.status.success(),
        "{browser}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A number in the element whose opening tag contains `marker` (e.g. `id="total-acknowledged"`).
fn number_after(dom: &str, marker: &str) -> Option<u64> {
    let at = dom.find(marker)?;
    let rest = &dom[at..];
    let text = &rest[rest.find('>')? + 1..];
    text[..text.find('<')?].trim().parse().ok()
}

/// The dashboard in headless Chromium while packets relay. Run by `tests/admin/dashboard.sh`, which skips when
/// no browser is installed; `RELAYD_CHROMIUM` names the browser and `RELAYD_SCREENSHOT` where the screenshot
/// goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium; run by tests/admin/dashboard.sh"]
async fn the_dashboard_renders_live_data_in_chromium() {
    let browser = std::env::var("RELAYD_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let service = Service::start().await;
    let shot = std::env::var("RELAYD_SCREENSHOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| service.dir.path().join("dashboard.png"));
    let api = &service.api;
    service.transfers(PER_DIRECTION).await;
    eventually("some packets acknowledged", || async {
        api.get_ok("/packets?state=acknowledged&limit=1").await["matched"]
            .as_u64()
            .unwrap()
            > 0
    })
    .await;
    let auth = api.authorisation().await;
    let bearer = format!("Bearer {TOKEN}");
    let (s, v) = api
        .post(
            "/clear",
            &[
                ("authorization", &bearer),
                ("x-relayd-authorisation", &auth),
            ],
            json!({ "chain": "ibc-0", "port": TRANSFER_PORT, "channel": service.a.channel_id }),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");

    // The page is loaded while a second batch relays.
    let url = format!("{}/", api.base);
    let profile = tempfile::tempdir().unwrap();
    let (dom, ()) = tokio::join!(
        {
            let (browser, url, profile) = (browser.clone(), url.clone(), profile.path().to_owned());
            async move {
                tokio::task::spawn_blocking(move || {
                    chromium(&browser, &profile, &["--dump-dom".into()], &url)
                })
                .await
                .unwrap()
            }
        },
        service.transfers(PER_DIRECTION)
    );
    assert!(dom.contains("data-loaded=\"true\""), "{dom}");
    assert!(!dom.contains("[object"), "{dom}");
    assert!(dom.contains("data-actor-id=\"coordinator\""), "{dom}");
    for chain in ["ibc-0", "ibc-1"] {
        assert!(dom.contains(&format!("data-actor-id=\"{chain}/tx_submitter\"")));
        assert!(
            dom.contains(&format!(
                "{chain}/tx_submitter</td><td>tx_submitter</td><td class=\"running\">running</td>"
            )),
            "{dom}"
        );
        assert!(dom.contains(&format!("data-chain=\"{chain}\"")));
        assert!(dom.contains(&format!("data-channel=\"{chain}/channel-0\"")));
    }
    let relayed = number_after(&dom, "id=\"total-acknowledged\"").expect("a relayed count");
    assert!(relayed > 0, "{dom}");
    assert!(dom.contains(">ready<"), "{dom}");
    assert!(dom.contains("data-operation=\"op-1\""), "{dom}");

    // The screenshot: a PNG of the page as drawn.
    let _ = std::fs::remove_file(&shot);
    let profile = tempfile::tempdir().unwrap();
    chromium(
        &browser,
        profile.path(),
        &[format!("--screenshot={}", shot.display())],
        &url,
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let (width, height) = (
        u32::from_be_bytes(png[16..20].try_into().unwrap()),
        u32::from_be_bytes(png[20..24].try_into().unwrap()),
    );
    assert_eq!((width, height), (1280, 1800));
    eprintln!("dashboard screenshot: {}", shot.display());
    let mut service = service;
    for chain in std::mem::take(&mut service.chains) {
        chain.shutdown().await;
    }
}

/// Dead letters through the API, and what a service without a token file or on a wildcard address does. The
/// dead letter is written into the stopped service's database: relayd dead-letters only packets that fail for
/// good, which the devnet does not produce on demand, and a packet still pending on chain would be retried by
/// the clearing every start runs, so the record is put on a packet that was already relayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_retried_and_mutations_need_a_token_file() {
    let mut service = Service::start().await;
    service.transfers(3).await;
    eventually("every packet acknowledged", || async {
        service.api.get_ok("/packets?state=acknowledged").await["matched"] == 6
    })
    .await;
    service.stop();

    let channel = service.a.channel_id.clone();
    let key = format!("ibc-0/{TRANSFER_PORT}/{channel}/2");
    {
        let store =
            relayd_actors::store::StateStore::open(&service.dir.path().join("data/state")).unwrap();
        let mut record = store
            .packets()
            .map(Result::unwrap)
            .find(|r| r.key.to_string() == key)
            .expect("a record of the packet");
        record.state = relayd_messages::PacketState::Failed;
        record.last_error = Some("Rejected: refused by the destination".into());
        record.history.push(relayd_actors::store::Transition {
            state: relayd_messages::PacketState::Failed,
            at_ms: record.updated_ms + 1,
            tx_hash: None,
            error: record.last_error.clone(),
        });
        store.put_packet(&record).unwrap();
        store.put_dead_letter(&record).unwrap();
        store.flush().unwrap();
    }

    // No token file, on a wildcard address: a warning, and every mutation refused.
    let port = service.port;
    let log = service
        .run(&format!("listen_addr = \"0.0.0.0:{port}\"\n"))
        .await;
    assert!(log_has(&log, "non-loopback address"));
    let listed = service.api.get_ok("/dead-letters").await;
    let letters = listed["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "{listed}");
    assert_eq!(letters[0]["key"], key.as_str());
    assert_eq!(letters[0]["state"], "failed");
    let bearer = format!("Bearer {TOKEN}");
    let (s, v) = service
        .api
        .post("/authorisations", &[("authorization", &bearer)], json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v["error"].as_str().unwrap().contains("token_file"));
    let retry = format!("/dead-letters/{key}/retry");
    let (s, _) = service
        .api
        .post(&retry, &[("authorization", &bearer)], json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let clear_body = json!({ "chain": "ibc-0", "port": TRANSFER_PORT, "channel": channel });
    let (s, _) = service
        .api
        .post("/clear", &[("authorization", &bearer)], clear_body)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    service.stop();

    // With the token: the retry takes the packet out of the queue and relays it again from the start.
    service
        .run(&format!(
            "listen_addr = \"127.0.0.1:{port}\"\ntoken_file = \"admin.token\"\n"
        ))
        .await;
    assert_eq!(
        service.api.get_ok("/dead-letters").await["dead_letters"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let auth = service.api.authorisation().await;
    let (s, v) = service
        .api
        .post(
            &retry,
            &[
                ("authorization", &bearer),
                ("x-relayd-authorisation", &auth),
            ],
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["retrying"], key.as_str());
    eventually("the retried packet finished", || async {
        let t = service.api.get_ok(&format!("/packets/{key}")).await;
        t["state"] == "acknowledged"
    })
    .await;
    assert!(service.api.get_ok("/dead-letters").await["dead_letters"]
        .as_array()
        .unwrap()
        .is_empty());
    let trace = service.api.get_ok(&format!("/packets/{key}")).await;
    let history: Vec<(String, Option<String>)> = trace["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["state"].as_str().unwrap().to_owned(),
                t["error"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let failed_at = history.iter().position(|(s, _)| s == "failed").unwrap();
    assert_eq!(
        history[failed_at + 1],
        (
            "detected".to_owned(),
            Some("retried by an operator".to_owned())
        ),
        "{history:?}"
    );
    assert_eq!(history.last().unwrap().0, "acknowledged");
    // Retrying again: it is no longer a dead letter.
    let auth = service.api.authorisation().await;
    let (s, _) = service
        .api
        .post(
            &retry,
            &[
                ("authorization", &bearer),
                ("x-relayd-authorisation", &auth),
            ],
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // `relayd clear packets` goes through the running service and reports the operation.
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&service.config)
        .args([
            "clear",
            "packets",
            "--chain",
            "ibc-0",
            "--port",
            TRANSFER_PORT,
            "--channel",
            &channel,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.starts_with("op-1 succeeded: 0 pending found"),
        "{printed}"
    );
    let ops = service.api.get_ok("/operations").await;
    assert_eq!(ops["operations"][0]["status"], "succeeded");

    service.stop();
    for chain in std::mem::take(&mut service.chains) {
        chain.shutdown().await;
    }
}
