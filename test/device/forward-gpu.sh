#!/usr/bin/env bash
# The GPU check of `verify --forward`: every bundled tiny model converted to a TP/PP/EP layout and
# verified on CUDA with real transformers and with the built-in HF implementation, in fp32 and bf16;
# then one deliberately broken conversion that must fail (exit 1) both exactly and by the forward pass.
#
# Needs: python3 with torch (+ transformers for the transformers rows), node >= 20 on PATH (or
# NODE_XZ=path to an xz-compressed node binary), dist/ built and production node_modules.
# Env: DEVICE (default cuda), RESULTS (default $OUT or ./gpu-results): where the reports go.
# Prints one line per check and writes summary.tsv + reports.tar.gz to RESULTS. Exit 0 when every
# check gave the expected exit status.
set -u
cd "$(dirname "$0")/../.."
DEVICE=${DEVICE:-cuda}
RESULTS=${RESULTS:-${OUT:-$PWD/gpu-results}}
WORK=$(mktemp -d)
mkdir -p "$RESULTS/reports"
. test/device/node-env.sh
for py in ${MEGATRON_CONVERT_PYTHON:-} "$(command -v python3)" /usr/bin/python3; do
  if [ -n "$py" ] && "$py" -c "import torch" 2>/dev/null; then export MEGATRON_CONVERT_PYTHON=$py; break; fi
done
echo "node $(node --version)"
"$MEGATRON_CONVERT_PYTHON" - <<'EOF'
import torch
try:
    import transformers; tv = transformers.__version__
except Exception as e:
    tv = f"absent ({e.__class__.__name__})"
dev = torch.cuda.get_device_name() if torch.cuda.is_available() else "no cuda"
print(f"torch {torch.__version__}, transformers {tv}, {dev}")
EOF
CLI="node bin/megatron-convert.js"
failures=0
printf 'model\tcheck\texpected\tgot\tseconds\n' >"$RESULTS/summary.tsv"
check() { # name expected-exit command...
  local name=$1 want=$2; shift 2
  local t0=$SECONDS
  "$@" >"$RESULTS/reports/$name.log" 2>&1
  local got=$?
  local mark=ok; [ "$got" = "$want" ] || { mark=FAIL; failures=$((failures + 1)); }
  printf '%s\t%s\t%s\t%s\t%s\n' "${name%%.*}" "${name#*.}" "$want" "$got" "$((SECONDS - t0))" >>"$RESULTS/summary.tsv"
  echo "$mark $name (want $want, got $got, $((SECONDS - t0)) s)"
  [ "$mark" = ok ] || tail -n 15 "$RESULTS/reports/$name.log"
}
for model in mixtral llama mistral qwen2-moe qwen3-moe; do
  layout=(--tp 2 --pp 2); case $model in llama | mistral) ;; *) layout+=(--ep 2) ;; esac
  out="$WORK/$model"
  check "$model.convert" 0 $CLI hf2mcore "fixtures/tiny-$model" "$out" "${layout[@]}" --quiet
  for impl in transformers builtin; do
    for dtype in fp32 bf16; do
      check "$model.forward-$impl-$dtype" 0 $CLI verify "fixtures/tiny-$model" "$out" --forward --device "$DEVICE" \
        --hf-impl "$impl" --compute-dtype "$dtype" --quiet --report "$RESULTS/reports/$model.forward-$impl-$dtype.json"
    done
  done
done
# A broken conversion: two experts of layer 1 exchanged inside one rank file, saved by real torch.
cp -r "$WORK/mixtral" "$WORK/mixtral-broken"
"$MEGATRON_CONVERT_PYTHON" - "$WORK/mixtral-broken" <<'EOF'
import glob, inspect, sys, torch
kw = {"weights_only": False} if "weights_only" in inspect.signature(torch.load).parameters else {}
path = sorted(glob.glob(f"{sys.argv[1]}/release/mp_rank_00_000_000/model_optim_rng.pt"))[0]
sd = torch.load(path, map_location="cpu", **kw)
m = sd["model"]
p = "decoder.layers.1.mlp.experts.local_experts.{}.linear_fc1.weight"
m[p.format(0)], m[p.format(1)] = m[p.format(1)].clone(), m[p.format(0)].clone()
torch.save(sd, path)
EOF
check "mixtral-broken.exact" 1 $CLI verify fixtures/tiny-mixtral "$WORK/mixtral-broken" --report "$RESULTS/reports/mixtral-broken.exact.json"
check "mixtral-broken.forward-transformers-fp32" 1 $CLI verify fixtures/tiny-mixtral "$WORK/mixtral-broken" --forward \
  --device "$DEVICE" --hf-impl transformers --quiet --report "$RESULTS/reports/mixtral-broken.forward-transformers-fp32.json"
check "mixtral-broken.forward-builtin-fp32" 1 $CLI verify fixtures/tiny-mixtral "$WORK/mixtral-broken" --forward \
  --device "$DEVICE" --hf-impl builtin --quiet --report "$RESULTS/reports/mixtral-broken.forward-builtin-fp32.json"
tar -czf "$RESULTS/reports.tar.gz" -C "$RESULTS" reports && rm -rf "$RESULTS/reports"
rm -rf "$WORK"
echo "failures: $failures"
[ "$failures" = 0 ]
