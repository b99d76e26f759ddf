//! The `relayd` command.

fn main() -> std::process::ExitCode {
    relayd::cli::main()
}
