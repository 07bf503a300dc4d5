//! Runs the fuzz targets over saved inputs, without fuzzer instrumentation; exits 1 when an
//! input panics. What CI runs (`fuzz/replay.sh`).
//!
//! ```text
//! replay                          # every target over fuzz/corpus/<target>/
//! replay engine                   # one target over its corpus
//! replay engine crash-1 crash-2   # one target over the given files
//! ```

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

thread_local! {
    /// The message of the last panic on this thread (the engine catches providers' panics
    /// by design, so a panic counts only when it escapes the target).
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(non-text panic payload)".to_owned());
        LAST_PANIC.with(|p| *p.borrow_mut() = format!("{payload}{location}"));
    }));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut jobs: Vec<(&str, fn(&[u8]), Vec<PathBuf>)> = Vec::new();
    for (name, target) in orderflow_fuzz::TARGETS {
        match args.first() {
            Some(t) if t != name => continue,
            Some(_) if args.len() > 1 => {
                jobs.push((name, *target, args[1..].iter().map(PathBuf::from).collect()));
            }
            _ => jobs.push((name, *target, files(&corpus.join(name)))),
        }
    }
    if jobs.is_empty() {
        eprintln!("unknown target; targets: flow, policy, engine");
        return ExitCode::from(2);
    }
    let mut failed = 0;
    for (name, target, paths) in jobs {
        let start = Instant::now();
        for path in &paths {
            let data = match std::fs::read(path) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("{name}: cannot read {}: {e}", path.display());
                    failed += 1;
                    continue;
                }
            };
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                let message = LAST_PANIC.with(|p| p.borrow().clone());
                eprintln!("{name}: PANIC on {}: {message}", path.display());
                failed += 1;
            }
        }
        println!("{name}: {} inputs in {:.2?}", paths.len(), start.elapsed());
    }
    if failed > 0 {
        eprintln!("{failed} input(s) failed");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
