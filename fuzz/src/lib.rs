//! Fuzz targets for `orderflow`, shared by the AFL++ binaries (`src/bin/{flow,policy,engine}.rs`)
//! and the plain `replay` binary that runs them over the saved corpus.
//!
//! Each target takes the fuzzer's bytes and must never panic: errors are expected results,
//! a panic (or a broken invariant, asserted) is a finding.

/// Prints when `FUZZ_TRACE` is set (`FUZZ_TRACE=1 replay flow file`): what a target did
/// with an input.
macro_rules! trace {
    ($($t:tt)*) => {
        if $crate::tracing() {
            eprintln!($($t)*);
        }
    };
}

fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

mod bytes;
mod docgen;
mod engine_target;
mod flow_target;
mod policy_target;

pub use engine_target::engine;
pub use flow_target::flow;
pub use policy_target::policy;

/// The targets by name, for `replay`.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[("flow", flow), ("policy", policy), ("engine", engine)];
