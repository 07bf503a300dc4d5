//! AFL++ target `flow`: see `orderflow_fuzz::flow`.

fn main() {
    // No panic hook: a panic the engine catches by design (a provider's) is not a crash;
    // one that escapes the target function aborts the process, which AFL++ records.
    afl::fuzz_nohook!(|data: &[u8]| {
        orderflow_fuzz::flow(data);
    });
}
