//! The baton CLI under another name, for this package's end-to-end tests; its messages say
//! `baton`, as the real binary's do.

fn main() -> std::process::ExitCode {
    baton_cli::main_as("baton")
}
