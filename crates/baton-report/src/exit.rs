//! Exit codes shared by every baton command.

/// Success.
pub const OK: u8 = 0;
/// The gate failed: verify found errors, a run failed, cleanup refused something it was asked to do.
pub const GATE_FAILED: u8 = 1;
/// Bad input or usage: bad plan, bad flag, unknown id, invalid filterset.
pub const BAD_INPUT: u8 = 2;
/// Environment or internal error: not a git repo, I/O failure, a needed tool is missing.
pub const ENVIRONMENT: u8 = 3;
