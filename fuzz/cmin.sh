#!/usr/bin/env bash
# Minimizes what AFL++ found for a target into fuzz/corpus/TARGET/: fuzz/cmin.sh TARGET
# Takes every queue under fuzz/out/TARGET/ (all instances) plus the current corpus, keeps
# the smallest set covering the same edges (afl-cmin -e: edge coverage, hit counts
# ignored, to keep the corpus small), names the files by content hash, and replaces the
# corpus with them. Hand-written seeds (files whose names do not start with `q-`) are kept.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/cmin.sh flow|policy|engine}
cargo afl build --profile fuzz --features afl --bin "$target"
bin=$(ls -d "$HOME"/.local/share/afl.rs/rustc-*/afl.rs-*/afl/bin | tail -n 1)
work=cmin/$target
rm -rf "$work" && mkdir -p "$work/in"
for q in out/"$target"/*/queue; do
    find "$q" -maxdepth 1 -type f -exec cp {} "$work/in/" \;
done
cp corpus/"$target"/* "$work/in/"
# The bash afl-cmin (the Python one records no tuples from afl.rs binaries here).
AFL_PATH=$bin PATH=$bin:$PATH AFL_SKIP_BIN_CHECK=1 \
    "$bin/afl-cmin.bash" -e -t 5000 -i "$work/in" -o "$work/out" -- "target/fuzz/$target" \
    > "$work/log" 2>&1 || { tail -n 20 "$work/log"; exit 1; }
find corpus/"$target" -maxdepth 1 -type f -name 'q-*' -delete
for f in "$work"/out/*; do
    cp "$f" "corpus/$target/q-$(sha1sum "$f" | cut -c1-16)"
done
# Hand-written seeds that cmin kept are now there twice; drop the hashed copy.
for f in corpus/"$target"/*; do
    case "$(basename "$f")" in q-*) continue ;; esac
    dup="corpus/$target/q-$(sha1sum "$f" | cut -c1-16)"
    [ -f "$dup" ] && rm "$dup"
done
echo "$target: $(ls corpus/"$target" | wc -l) files in fuzz/corpus/$target ($(du -sh corpus/"$target" | cut -f1))"
