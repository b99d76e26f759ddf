//! Commands that work through a running relayd's admin server: `relayd packet trace` and
//! `relayd clear packets`. The trace falls back to the state database when no service is up.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use relayd_config::Config;
use relayd_messages::{ChainId, ChannelId, PacketKey, PortId, Sequence};
use serde_json::{json, Value};

use crate::admin::{views, AUTHORISATION_HEADER};
use crate::cli::{ClearPacketsArgs, Cli, TraceArgs, EXIT_CONFIG, EXIT_RUNTIME};
use crate::commands::config::load;
use crate::commands::fail;
use crate::datadir::DataDir;

/// How long the CLI waits for the service to answer one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The admin server's base URL; a wildcard listen address is reached over loopback.
fn base_url(config: &Config) -> String {
    let mut addr = config.admin.listen_addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}")
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| format!("http client: {e}"))
}

/// The answer's status and JSON body; `Ok(None)` when nothing listens (no service up).
async fn call(
    request: reqwest::RequestBuilder,
) -> Result<Option<(reqwest::StatusCode, Value)>, String> {
    match request.send().await {
        Ok(resp) => {
            let status = resp.status();
            let text = resp.text().await.map_err(|e| e.to_string())?;
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            Ok(Some((status, body)))
        }
        Err(e) if e.is_connect() => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

fn reason(body: &Value) -> String {
    body.get("error")
        .and_then(Value::as_str)
        .map_or_else(|| body.to_string(), str::to_owned)
}

/// `relayd packet trace <chain> <port> <channel> <sequence>`
pub fn trace(cli: &Cli, args: &TraceArgs) -> ExitCode {
    let path = cli.config_path();
    let config = match load(&path, args.out.json) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let key = match parse_key(args) {
        Ok(k) => k,
        Err(e) => return fail(&e, EXIT_CONFIG),
    };
    let url = format!(
        "{}/packets/{}/{}/{}/{}",
        base_url(&config),
        key.src_chain,
        key.src_port,
        key.src_channel,
        key.sequence
    );
    let answer = actix_rt::System::new().block_on(async {
        let http = client()?;
        match call(http.get(format!("{}/version", base_url(&config)))).await? {
            Some((_, version)) if serves(&version, &config, &path) => call(http.get(&url)).await,
            // Nothing listens, or another relayd (another data directory) does.
            _ => Ok(None),
        }
    });
    let timeline = match answer {
        Ok(Some((status, body))) if status.is_success() => body,
        Ok(Some((_, body))) => return fail(&reason(&body), EXIT_RUNTIME),
        Ok(None) => match offline_timeline(&config, &path, &key) {
            Ok(t) => t,
            Err(e) => return fail(&e, EXIT_RUNTIME),
        },
        Err(e) => return fail(&format!("{url}: {e}"), EXIT_RUNTIME),
    };
    if args.out.json {
        println!("{timeline:#}");
    } else {
        print!("{}", views::render_timeline(&timeline));
    }
    ExitCode::SUCCESS
}

fn parse_key(args: &TraceArgs) -> Result<PacketKey, String> {
    Ok(PacketKey {
        src_chain: ChainId::new(args.chain.clone()).map_err(|e| format!("chain: {e}"))?,
        src_port: PortId::new(args.port.clone()).map_err(|e| format!("port: {e}"))?,
        src_channel: ChannelId::new(args.channel.clone()).map_err(|e| format!("channel: {e}"))?,
        sequence: Sequence(args.sequence),
    })
}

/// With no service up, the record is read from the data directory (which the service would hold locked).
fn offline_timeline(config: &Config, config_path: &Path, key: &PacketKey) -> Result<Value, String> {
    let dir = crate::commands::data_dir(config, config_path);
    let data = DataDir::open(&dir).map_err(|e| e.to_string())?;
    let record = data
        .store
        .packet(key)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no record of packet {key}"))?;
    serde_json::to_value(views::timeline(&record)).map_err(|e| e.to_string())
}

/// Whether the service that answered `/version` runs over this configuration's data directory.
fn serves(version: &Value, config: &Config, config_path: &Path) -> bool {
    let ours = crate::commands::data_dir(config, config_path);
    let ours = std::fs::canonicalize(&ours).unwrap_or(ours);
    version["data_dir"].as_str() == Some(ours.display().to_string().as_str())
}

/// `relayd clear packets` through the running service: asks it to clear the channel and follows the operation
/// to its end. `None` when no service answers at `[admin] listen_addr` (the caller then clears by itself).
pub fn clear_through_service(
    config: &Config,
    config_path: &Path,
    args: &ClearPacketsArgs,
    sequences: Option<&[u64]>,
) -> Option<ExitCode> {
    let base = base_url(config);
    let up = actix_rt::System::new().block_on(async {
        let http = client()?;
        call(http.get(format!("{base}/version"))).await
    });
    match up {
        Ok(Some((_, version))) if serves(&version, config, config_path) => {}
        // Nothing listens, or another relayd (another data directory) does: clear here.
        Ok(_) => return None,
        Err(e) => return Some(fail(&format!("{base}: {e}"), EXIT_RUNTIME)),
    }
    let Some(token_file) = &config.admin.token_file else {
        return Some(fail(
            "a relayd service is running; clearing through it needs [admin] token_file (its mutating endpoints \
             are disabled without one), and it clears every clear_interval blocks by itself",
            EXIT_CONFIG,
        ));
    };
    let token_path = config_path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(token_file);
    let token = match crate::admin::read_token(&token_path) {
        Ok(t) => t,
        Err(e) => return Some(fail(&format!("{}: {e}", token_path.display()), EXIT_CONFIG)),
    };
    Some(run_clear(&base, &token, args, sequences))
}

fn run_clear(
    base: &str,
    token: &str,
    args: &ClearPacketsArgs,
    sequences: Option<&[u64]>,
) -> ExitCode {
    let mut body = json!({ "chain": args.chain, "port": args.port, "channel": args.channel });
    if let Some(seqs) = sequences {
        body["sequences"] = json!(seqs);
    }
    let outcome = actix_rt::System::new().block_on(async {
        let http = client()?;
        let bearer = format!("Bearer {token}");
        let Some((status, auth)) = call(
            http.post(format!("{base}/authorisations"))
                .header("authorization", &bearer),
        )
        .await?
        else {
            return Err(format!("the service at {base} stopped answering"));
        };
        if !status.is_success() {
            return Err(reason(&auth));
        }
        let nonce = auth["authorisation"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let started = call(
            http.post(format!("{base}/clear"))
                .header("authorization", &bearer)
                .header(AUTHORISATION_HEADER, nonce)
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await?
        .ok_or("the service stopped answering")?;
        if !started.0.is_success() {
            return Err(reason(&started.1));
        }
        let id = started.1["operation_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        loop {
            let (status, op) = call(http.get(format!("{base}/operations/{id}")))
                .await?
                .ok_or("the service stopped answering")?;
            if !status.is_success() {
                return Err(reason(&op));
            }
            if op["status"] != "running" {
                return Ok(op);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let op = match outcome {
        Ok(op) => op,
        Err(e) => return fail(&e, EXIT_RUNTIME),
    };
    if args.out.json {
        println!("{op:#}");
    } else {
        let c = &op["counts"];
        println!(
            "{} {}: {} pending found, {} started, {} done, {} failed, {} unfinished, {} skipped",
            op["id"].as_str().unwrap_or("?"),
            op["status"].as_str().unwrap_or("?"),
            c["total"],
            c["started"],
            c["done"],
            c["failed"],
            c["pending"],
            c["skipped"]
        );
        for p in op["packets"].as_array().into_iter().flatten() {
            println!(
                "  {} ({}) {} {}",
                p["sequence"],
                p["pending"].as_str().unwrap_or("?"),
                p["state"].as_str().unwrap_or("?"),
                p["error"].as_str().unwrap_or("")
            );
        }
        if let Some(e) = op["error"].as_str() {
            println!("  {e}");
        }
    }
    if op["status"] == "succeeded" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_RUNTIME)
    }
}
