#!/usr/bin/env bash
# The GPU baseline measured on real hardware (issue 14), in one prepared run of under 5 minutes on a GPU host
# that has Python, PyTorch with CUDA and onnx, and nothing else of the farm installed:
#
#   bench/gpu_device_check.sh [--wheels DIR] [--out DIR] [--device cuda|cpu] [--quick]
#
# 1. installs what is missing from the wheels in DIR, offline and without dependencies: onnx2torch,
#    mlcommons-loadgen, nvidia-ml-py (the host has no network);
# 2. builds resnet18, resnet50 and mobilenet_v2 in code (farm/zoo: numpy and onnx only, deterministic weights);
# 3. runs the standalone agent (workers/agent/farm_agent.py run) with the torch_cuda backend for each model in
#    fp32 and fp16, SingleStream (batch 1) and Offline (batch 32), with the NVML sensor, one --out folder each;
# 4. prints a summary table. Back on the farm's machine, import every folder, then compare:
#      farm import OUT --type h200 --board h200-1      # every run folder, one sweep; precision: each run's dtype
#      farm compare --model resnet18 --precision int8 --precision fp16 --precision fp32
#
# --device cpu runs the same code path on the CPU (no NVML): how it is checked where there is no GPU.
# --quick: mobilenet_v2 only, shorter runs (a smoke test).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
WHEELS="$REPO/.device-wheels"
OUT="$PWD/gpu-runs"
DEVICE=cuda
QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) WHEELS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --device) DEVICE=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    -h|--help) sed -n 2,17p "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$DEVICE" in cuda|cpu) ;; *) echo "--device must be cuda or cpu" >&2; exit 2 ;; esac
START=$(date +%s)
mkdir -p "$OUT/models"

need() {  # distribution name (its metadata: onnx2torch cannot be imported here without torchvision), wheel name
  if ! "$PY" -c "import importlib.metadata as m; m.version('$1')" 2>/dev/null; then
    if [ ! -d "$WHEELS" ]; then echo "$1 is missing and there is no wheels folder $WHEELS (--wheels DIR)" >&2; exit 1; fi
    "$PY" -m pip install --quiet --no-index --find-links "$WHEELS" --no-deps "$2"
  fi
}
"$PY" -c "import torch, onnx, numpy" || { echo "this host needs torch, onnx and numpy" >&2; exit 1; }
need onnx2torch onnx2torch
need mlcommons-loadgen mlcommons-loadgen
[ "$DEVICE" = cpu ] || need nvidia-ml-py nvidia-ml-py
"$PY" - "$DEVICE" <<'EOF'
import sys, torch
if sys.argv[1] == "cuda" and not torch.cuda.is_available():
    sys.exit(f"no CUDA device: torch {torch.__version__} (CUDA {torch.version.cuda}) sees none")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, device "
      f"{torch.cuda.get_device_name(0) if sys.argv[1] == 'cuda' else 'cpu'}")
EOF

if [ "$QUICK" = 1 ]; then MODELS="mobilenet_v2"; DURATION=500; else MODELS="resnet18 resnet50 mobilenet_v2"; DURATION=2000; fi
PYTHONPATH="$REPO" "$PY" - "$OUT/models" $MODELS <<'EOF'
import sys
from pathlib import Path
import onnx
from farm.zoo.registry import build_zoo_model
out = Path(sys.argv[1])
for name in sys.argv[2:]:
    for batch in (1, 32):
        path = out / f"{name}-b{batch}.onnx"
        if not path.exists():
            onnx.save(build_zoo_model(name, batch), str(path))
print("models:", ", ".join(sorted(p.name for p in out.glob("*.onnx"))))
EOF

FAILED=0
for model in $MODELS; do
  for dtype in fp32 fp16; do
    for scenario in SingleStream Offline; do
      batch=1; [ "$scenario" = Offline ] && batch=32
      run="$OUT/$model-$dtype-$scenario"
      [ -f "$run/report.json" ] && { echo "kept $run (already measured)"; continue; }
      rm -rf "$run"
      cfg="$OUT/models/$model-$dtype-$scenario.json"
      SENSORS='[{"kind": "nvml", "index": 0}]'; [ "$DEVICE" = cpu ] && SENSORS='[]'
      cat > "$cfg" <<JSON
{"artifact": "$OUT/models/$model-b$batch.onnx", "backend": "torch_cuda", "scenario": "$scenario",
 "batch_size": $batch, "warmup_queries": 20, "sensors": $SENSORS,
 "gpu": {"device": "$DEVICE", "dtype": "$dtype", "cudnn_benchmark": true},
 "loadgen": {"min_duration_ms": $DURATION, "min_query_count": 64}}
JSON
      if "$PY" "$REPO/workers/agent/farm_agent.py" run --config "$cfg" --out "$run" --log-level WARNING > /dev/null; then
        echo "ok    $model $dtype $scenario"
      else
        echo "FAIL  $model $dtype $scenario (see $run/report.json)"; FAILED=$((FAILED + 1))
      fi
    done
  done
done

"$PY" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
print(f"{'run':<32} {'status':<6} {'p50 ms':>9} {'p99 ms':>9} {'inf/s':>10} {'W':>7} {'mJ/inf':>8}  valid")
for path in sorted(Path(sys.argv[1]).glob("*/report.json")):
    r = json.loads(path.read_text())
    lat, power = r.get("latency_ms") or {}, r.get("power") or {}
    ips, watts = r.get("throughput_ips"), power.get("avg_w")
    mj = 1000 * watts / ips if ips and watts else None
    f = lambda v, d=2: "-" if v is None else f"{v:,.{d}f}"
    print(f"{path.parent.name:<32} {r.get('status', '?'):<6} {f(lat.get('p50')):>9} {f(lat.get('p99')):>9} "
          f"{f(ips, 1):>10} {f(watts, 1):>7} {f(mj):>8}  {r.get('result_valid')}")
EOF
echo "done in $(( $(date +%s) - START )) s; $FAILED failed; reports under $OUT"
[ "$FAILED" = 0 ]
