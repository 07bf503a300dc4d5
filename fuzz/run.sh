#!/usr/bin/env bash
# Fuzzes one target with AFL++ for a while: fuzz/run.sh TARGET [SECONDS]
#   TARGET: flow, policy or engine; SECONDS: how long (default 600).
# Builds the instrumented binaries (profile `fuzz`), seeds from fuzz/corpus/TARGET/, and
# writes AFL++'s state to fuzz/out/TARGET/ (queue, crashes, hangs, fuzzer_stats).
# A third argument names a parallel instance in the same out/TARGET: `main` runs as
# afl-fuzz -M main, any other name as -S NAME (two instances of one target share finds).
# Run at most one per core. Environment: AFL_* variables pass through to afl-fuzz.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh flow|policy|engine [SECONDS]}
seconds=${2:-600}
instance=${3:-}
cargo afl build --profile fuzz --features afl --bin "$target"
dicts=()
[ -f "dict/$target.dict" ] && dicts+=(-x "dict/$target.dict")
json_dict=$(ls "$HOME"/.local/share/afl.rs/AFLplusplus/dictionaries/json.dict 2>/dev/null || true)
[ "$target" != engine ] && [ -n "$json_dict" ] && dicts+=(-x "$json_dict")
mkdir -p out
# Resume an earlier session in out/TARGET if there is one.
input=(-i "corpus/$target")
role=()
case "$instance" in
"") dir=default ;;
main) dir=main; role=(-M main) ;;
*) dir=$instance; role=(-S "$instance") ;;
esac
[ -d "out/$target/$dir/queue" ] && input=(-i -)
export AFL_NO_UI=${AFL_NO_UI:-1}
export AFL_SKIP_CPUFREQ=1
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_NO_AFFINITY=${AFL_NO_AFFINITY:-1}
exec cargo afl fuzz "${input[@]}" -o "out/$target" "${role[@]}" -V "$seconds" -t 2000 "${dicts[@]}" \
    "target/fuzz/$target"
