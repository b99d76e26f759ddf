//! `relayd config validate`, and loading the configuration for every command.

pub(crate) mod checks;

use std::path::Path;
use std::process::ExitCode;

use relayd_config::{Config, ConfigErrors};
use serde_json::json;

use crate::cli::{Cli, OutputArgs, EXIT_CONFIG};

/// Loads the configuration, or prints why it cannot be used. Shared by every command that needs one.
pub fn load(path: &Path, json_output: bool) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|errors| {
        report_errors(path, &errors, json_output);
        ExitCode::from(EXIT_CONFIG)
    })
}

/// [`load`], then every check `start` makes before it contacts a node (files, keys, the data directory), so
/// that `config validate` and `start` refuse the same files. Also returns the file's text, so that problems
/// found later on chain can name their line.
pub fn load_for_service(path: &Path, json_output: bool) -> Result<(Config, String), ExitCode> {
    let (config, text) = Config::load_text(path).map_err(|errors| {
        report_errors(path, &errors, json_output);
        ExitCode::from(EXIT_CONFIG)
    })?;
    let problems = checks::files(&config, path, &text);
    if problems.is_empty() {
        return Ok((config, text));
    }
    report_errors(path, &ConfigErrors(problems), json_output);
    Err(ExitCode::from(EXIT_CONFIG))
}

fn report_errors(path: &Path, errors: &ConfigErrors, json_output: bool) {
    if json_output {
        let list: Vec<_> = errors
            .iter()
            .map(|e| {
                json!({
                    "file": e.file.display().to_string(),
                    "line": e.line,
                    "key": e.key,
                    "message": e.message,
                    "text": e.to_string(),
                })
            })
            .collect();
        let doc =
            json!({ "status": "invalid", "file": path.display().to_string(), "errors": list });
        println!("{doc}");
    } else {
        eprintln!("{errors}");
    }
}

/// Checks the file and prints a one-line summary. Unless `file_only`, also checks what the file names (key
/// files, the token file, each chain's signing key), as `start` does.
pub fn validate(cli: &Cli, out: OutputArgs, file_only: bool) -> ExitCode {
    let path = cli.config_path();
    let loaded = if file_only {
        load(&path, out.json)
    } else {
        load_for_service(&path, out.json).map(|(config, _)| config)
    };
    let config = match loaded {
        Ok(config) => config,
        Err(code) => return code,
    };
    let chains: Vec<&str> = config.chains.iter().map(|c| c.id.as_str()).collect();
    let connections = config.connections.as_ref().map_or(0, Vec::len);
    let paths = config.path_count();
    if out.json {
        let doc = json!({
            "status": "valid",
            "file": path.display().to_string(),
            "chains": chains,
            "connections": connections,
            "paths": paths,
        });
        println!("{doc}");
    } else {
        println!(
            "{}: valid: {} ({}), {}, {}",
            path.display(),
            plural(chains.len(), "chain"),
            chains.join(", "),
            plural(connections, "connection"),
            plural(paths, "path"),
        );
    }
    ExitCode::SUCCESS
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
