//! The `baton` binary: all of it lives in the `baton_cli` library.

fn main() -> std::process::ExitCode {
    baton_cli::main()
}
