#!/usr/bin/env bash
# `npm run bench` on a bigger machine, plus how verify (worker threads) and hf2mcore (rank files
# written at once) scale with --jobs, and hf2mcore in one thread against threads.
# Needs node >= 20 on PATH (or NODE_XZ=path to an xz-compressed node binary), dist/ built and
# production node_modules (NODE_MODULES=path to link). Env: RESULTS (default $OUT or ./bench-results),
# BENCH_SIZES (default 1GiB,4GiB), BENCH_REPEAT (default 2), BENCH_CACHE (warm or cold, default warm),
# BENCH_TIMEOUT (seconds, default 420),
# SCALING_SIZE (GiB of the model verify's --jobs scaling runs on, default 4).
set -u
cd "$(dirname "$0")/../.."
RESULTS=${RESULTS:-${OUT:-$PWD/bench-results}}
WORK=$(mktemp -d)
mkdir -p "$RESULTS"
. test/device/node-env.sh
{
  echo "node $(node --version), $(nproc) CPUs, $(free -g | awk '/Mem:/ {print $2}') GiB"
  df -h "$WORK" | tail -1
  # verify's scaling with worker threads on one 4 GiB model, between two read baselines
  node --input-type=module -e "
    import { chooseDims, writeSyntheticModel } from './dist/bench/synthetic.js';
    const [d] = chooseDims([${SCALING_SIZE:-4} * 2 ** 30]);
    await writeSyntheticModel('$WORK/hf', d);"
  node bin/megatron-convert.js hf2mcore "$WORK/hf" "$WORK/tp4ep4" --tp 4 --ep 4 --quiet >/dev/null
  for step in read v1 v2 v4 v8 v16 read; do
    case $step in
      read) TIMEFORMAT="read: %R s"; time node dist/bench/io-baseline.js read "$WORK/hf" "$WORK/tp4ep4" >/dev/null ;;
      v*) TIMEFORMAT="verify --jobs ${step#v}: %R s"; time node bin/megatron-convert.js verify "$WORK/hf" "$WORK/tp4ep4" --jobs "${step#v}" ;;
    esac
  done
  # hf2mcore TP4 EP4's scaling with --jobs (rank files written at once), between two copy baselines
  TIMEFORMAT="copy: %R s"; time node dist/bench/io-baseline.js copy "$WORK/copy" "$WORK/hf" >/dev/null; rm -rf "$WORK/copy"
  for jobs in 4 8 16; do
    rm -rf "$WORK/tp4ep4"
    TIMEFORMAT="hf2mcore TP4 EP4 --jobs $jobs: %R s"
    time node bin/megatron-convert.js hf2mcore "$WORK/hf" "$WORK/tp4ep4" --tp 4 --ep 4 --jobs "$jobs" --quiet >/dev/null
  done
  # the same in one thread against threads (the default where there are more than 2 CPUs), alternating
  for round in 1 2; do
    for threads in false undefined; do
      rm -rf "$WORK/tp4ep4"
      TIMEFORMAT="hf2mcore TP4 EP4 --jobs 8, threads $threads: %R s"
      time node --input-type=module -e "
        const { hf2mcore } = await import('./dist/commands/convert.js');
        const { targetFrom } = await import('./dist/cli/layout-options.js');
        const r = await hf2mcore({ ...targetFrom({ tp: 4, ep: 4 }), hf: '$WORK/hf', out: '$WORK/tp4ep4', jobs: 8, threads: $threads });
        console.log('threads used:', r.outcome.threads);"
    done
  done
  TIMEFORMAT="copy: %R s"; time node dist/bench/io-baseline.js copy "$WORK/copy" "$WORK/hf" >/dev/null
  echo "bytes: hf $(du -sb "$WORK/hf" | cut -f1), tp4ep4 $(du -sb "$WORK/tp4ep4" | cut -f1)"
  rm -rf "$WORK/hf" "$WORK/tp4ep4" "$WORK/copy"
} 2>&1 | tee "$RESULTS/scaling.log"
timeout "${BENCH_TIMEOUT:-420}" node dist/bench/main.js --sizes "${BENCH_SIZES:-1GiB,4GiB}" --repeat "${BENCH_REPEAT:-2}" \
  --cache "${BENCH_CACHE:-warm}" --torch-load-check --dir "$WORK/bench" --out "$RESULTS/bench.json" 2>&1 | tee "$RESULTS/bench.log"
rm -rf "$WORK"
