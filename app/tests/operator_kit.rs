//! The operator kit that ships beside the binary stays true to it: the Grafana dashboard queries only metrics
//! relayd exports (with labels they carry), the systemd unit's restart policy matches relayd's exit codes, and the
//! shell completion scripts load in their shell and complete relayd's commands.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use relayd_actors::metrics::Metrics;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn relayd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_relayd"))
}

/// Every PromQL expression in the dashboard (panel targets and variable queries).
fn expressions(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr" | "definition", serde_json::Value::String(s)) => out.push(s.clone()),
                    ("query", serde_json::Value::String(s)) if s.contains("relayd_") => {
                        out.push(s.clone())
                    }
                    _ => expressions(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| expressions(v, out)),
        _ => {}
    }
}

/// The metric names an expression reads and the label names its selectors use on each: `name{a="x",b=~"y"}`.
fn selectors(expr: &str) -> Vec<(String, Vec<String>)> {
    let bytes = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = expr[i..].find("relayd_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let name = expr[start..end].to_owned();
        let mut labels = Vec::new();
        if bytes.get(end) == Some(&b'{') {
            let close = expr[end..].find('}').map(|c| end + c).unwrap();
            for matcher in expr[end + 1..close].split(',').filter(|m| !m.is_empty()) {
                let label: String = matcher
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                labels.push(label);
            }
            end = close;
        }
        out.push((name, labels));
        i = end;
    }
    out
}

#[test]
fn the_grafana_dashboard_queries_only_metrics_relayd_exports() {
    let text = std::fs::read_to_string(repo().join("docs/grafana/relayd.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut exprs = Vec::new();
    expressions(&dashboard, &mut exprs);
    assert!(
        exprs.len() > 20,
        "the dashboard has {} queries",
        exprs.len()
    );

    let metrics = Metrics::new(&prometheus::Registry::new(), vec![1.0]).unwrap();
    let families = metrics.describe();
    let mut used = BTreeSet::new();
    for expr in &exprs {
        for (name, labels) in selectors(expr) {
            // Histograms are queried through their _bucket, _sum and _count series.
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|base| families.iter().any(|f| f.name == *base))
                .unwrap_or(&name);
            let Some(desc) = families.iter().find(|f| f.name == family) else {
                panic!("`{expr}` queries {name}, which relayd does not export");
            };
            for label in labels {
                assert!(
                    desc.labels.contains(&label),
                    "`{expr}` selects label {label} of {family}, which carries {:?}",
                    desc.labels
                );
            }
            used.insert(family.to_owned());
        }
    }
    // The dashboard shows every family, so a new metric needs a panel (or a reason here).
    let missing: Vec<_> = families
        .iter()
        .filter(|f| !used.contains(&f.name))
        .map(|f| f.name.clone())
        .collect();
    assert!(missing.is_empty(), "families without a panel: {missing:?}");
}

#[test]
fn a_dashboard_query_for_a_metric_relayd_lacks_is_caught() {
    let metrics = Metrics::new(&prometheus::Registry::new(), vec![1.0]).unwrap();
    let families = metrics.describe();
    let found = selectors(r#"rate(relayd_txs_confirmed_total{chain=~"$chain"}[5m]) + relayd_nope"#);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].1, ["chain"]);
    assert!(families.iter().any(|f| f.name == found[0].0));
    assert!(!families.iter().any(|f| f.name == found[1].0));
}

/// `Key=value` lines of one section of a unit file.
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_systemd_unit_restarts_on_runtime_failures_and_not_on_config_errors() {
    let unit = std::fs::read_to_string(repo().join("docs/examples/relayd.service")).unwrap();
    assert_eq!(unit_values(&unit, "Restart"), ["on-failure"]);
    assert_eq!(
        unit_values(&unit, "RestartPreventExitStatus"),
        [relayd::cli::EXIT_CONFIG.to_string()]
    );
    // A second SIGTERM during the graceful stop exits 143 with the state flushed: a stop, not a failure.
    assert_eq!(unit_values(&unit, "SuccessExitStatus"), ["143"]);
    let stop: u64 = unit_values(&unit, "TimeoutStopSec")[0].parse().unwrap();
    assert!(
        stop > 30,
        "TimeoutStopSec must outlast the graceful stop's 30 s drain"
    );

    // The unit's own command lines, run against a broken config, exit with the code it does not restart on.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("config.toml");
    std::fs::write(&bad, "[global]\ndata_dir = 5\n").unwrap();
    for key in ["ExecStartPre", "ExecStart"] {
        let line = &unit_values(&unit, key)[0];
        let mut words = line.split_whitespace();
        assert_eq!(words.next(), Some("/usr/local/bin/relayd"));
        let args: Vec<String> = words
            .map(|w| {
                if w == "/etc/relayd/config.toml" {
                    bad.display().to_string()
                } else {
                    w.to_owned()
                }
            })
            .collect();
        let out = relayd().args(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(i32::from(relayd::cli::EXIT_CONFIG)),
            "{key} on a broken config: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("data_dir"), "{key}: {stderr}");
    }
}

fn completion(shell: &str) -> String {
    let out = relayd().args(["completions", shell]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bash_completion_loads_and_completes_commands_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("relayd.bash");
    std::fs::write(&script, completion("bash")).unwrap();
    // Load the script in a real bash and ask its completion function what follows `relayd qu` and
    // `relayd query packet pen`, as bash would on <TAB>.
    let probe = format!(
        r#"source {}
complete -p relayd
COMP_WORDS=(relayd qu); COMP_CWORD=1; COMP_LINE="relayd qu"; COMP_POINT=${{#COMP_LINE}}
_relayd relayd qu relayd; echo "1:${{COMPREPLY[*]}}"
COMP_WORDS=(relayd query packet pen); COMP_CWORD=3; COMP_LINE="relayd query packet pen"; COMP_POINT=${{#COMP_LINE}}
_relayd relayd pen packet; echo "2:${{COMPREPLY[*]}}"
COMP_WORDS=(relayd start --log-f); COMP_CWORD=2; COMP_LINE="relayd start --log-f"; COMP_POINT=${{#COMP_LINE}}
_relayd relayd --log-f start; echo "3:${{COMPREPLY[*]}}"
"#,
        script.display()
    );
    let out = Command::new("bash").arg("-c").arg(probe).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("-F _relayd relayd"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "1:query"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "2:pending"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "3:--log-format"), "{stdout}");
}

#[test]
fn zsh_and_fish_completions_name_every_command() {
    let zsh = completion("zsh");
    assert!(zsh.starts_with("#compdef relayd"));
    let fish = completion("fish");
    for command in [
        "config", "start", "keys", "light", "query", "tx", "create", "packet", "clear",
    ] {
        assert!(zsh.contains(&format!("'{command}:")), "zsh lacks {command}");
        assert!(
            fish.contains(&format!("-a \"{command}\"")),
            "fish lacks {command}"
        );
    }
    let out = relayd().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
