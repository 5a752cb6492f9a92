//! The baton CLI under another name, for this package's end-to-end tests.

fn main() -> std::process::ExitCode {
    baton_cli::main()
}
