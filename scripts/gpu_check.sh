#!/usr/bin/env bash
# The accelerator check: what facemetric does on a GPU, each part compared with the same on the CPU.
#
#   scripts/gpu_check.sh [DEVICE] [OUT]      DEVICE: cuda (default) or cpu (a rehearsal of the script itself)
#
# 1. ORL (configs/orl.yaml, 60 epochs) trained on DEVICE with bfloat16 autocast, and on the CPU in fp32: the
#    held-out accuracy of the two runs (val.csv) within 0.05 of each other.
# 2. torchrun with one process on DEVICE: an all_reduce through NCCL (gloo on the CPU) gives the right sum, and
#    `facemetric train` launched by torchrun trains (one process: DDP needs two GPUs, NCCL refuses two ranks on one).
# 3. The serving model on DEVICE: dlib-resnet's PyTorch port on DEVICE against the CPU on 100 ORL photos (worst
#    cosine >= 0.999), then `benchmarks/serve_load.py` with it (8 clients x 100 requests).
#
# Everything goes to OUT (default benchmarks/results/gpu-check-DATE-CARD): gpu_check.log, environment.json,
# summary.json and the runs. Needs `make install` and ../shared/data (or $FACEMETRIC_SHARED_DATA). Exits 1 when
# a comparison fails, 2 when DEVICE is not there.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${1:-cuda}
PY=${PYTHON:-.venv/bin/python}
DATA=${FACEMETRIC_SHARED_DATA:-../shared/data}
CARD=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0).replace(' ', '-') if torch.cuda.is_available() else 'cpu')")
if [ "$DEVICE" = cuda ] && [ "$CARD" = cpu ]; then
    echo "gpu_check: no CUDA device here (torch.cuda.is_available() is False); run it where one is, or give cpu" >&2
    exit 2
fi
OUT=${2:-benchmarks/results/gpu-check-$(date +%Y-%m-%d)-$CARD}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
echo "== gpu_check on $DEVICE ($CARD), $(date -u +%Y-%m-%dT%H:%M:%SZ), output in $OUT"

"$PY" - "$OUT" <<'PY'
import json, platform, sys
import torch
info = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
        "cuda_available": torch.cuda.is_available()}
if torch.cuda.is_available():
    info.update(device=torch.cuda.get_device_name(0), capability=list(torch.cuda.get_device_capability(0)),
                bf16=torch.cuda.is_bf16_supported(), nccl=torch.distributed.is_nccl_available(),
                memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
json.dump(info, open(f"{sys.argv[1]}/environment.json", "w"), indent=1)
print(json.dumps(info))
PY

TRAIN=(configs/orl.yaml --data "$DATA/orl" --set data.cache_dir=null --set train.progress=false)
echo "== 1. ORL: bf16 on $DEVICE, fp32 on the CPU"
time "$PY" -m facemetric -q train "${TRAIN[@]}" --out "$OUT/orl-$DEVICE-bf16" --device "$DEVICE" --set train.amp=true
time "$PY" -m facemetric -q train "${TRAIN[@]}" --out "$OUT/orl-cpu-fp32" --device cpu --set train.amp=false

echo "== 2. torchrun on $DEVICE: a collective (NCCL on CUDA), then training launched by it"
cat > "$OUT/collective.py" <<'PY'
import json, os, sys
import torch
import torch.distributed as dist
device = sys.argv[2]
backend = "nccl" if device == "cuda" else "gloo"
dist.init_process_group(backend)
x = torch.arange(1024, dtype=torch.float32, device=device)
dist.all_reduce(x)
result = {"backend": dist.get_backend(), "world_size": dist.get_world_size(), "sum_ok": bool(torch.equal(x.cpu(), torch.arange(1024.0) * dist.get_world_size()))}
dist.destroy_process_group()
json.dump(result, open(os.path.join(sys.argv[1], "collective.json"), "w"))
print(json.dumps(result))
PY
"$PY" -m torch.distributed.run --standalone --nproc_per_node=1 "$OUT/collective.py" "$OUT" "$DEVICE"
time "$PY" -m torch.distributed.run --standalone --nproc_per_node=1 --max-restarts=0 -m facemetric -q train \
    "${TRAIN[@]}" --out "$OUT/orl-torchrun-$DEVICE" --device "$DEVICE" --epochs 20

echo "== 3. the serving model on $DEVICE"
"$PY" - "$OUT" "$DEVICE" "$DATA" <<'PY'
import json, sys
from pathlib import Path
import numpy as np
from PIL import Image
from facemetric.embedders import load_embedder
out, device, data = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
photos = [Image.open(p).convert("RGB") for p in sorted((data / "orl").rglob("*.pgm"))[:100]]
here = load_embedder(f"dlib-resnet?backend=torch&device={device}").embed_photos(photos)
cpu = load_embedder("dlib-resnet?backend=torch").embed_photos(photos)
assert here.index.tolist() == cpu.index.tolist(), "the two found faces in different photos"
cosine = np.sum(here.embeddings * cpu.embeddings, axis=1)
result = {"photos": len(photos), "faces": len(cosine), "worst_cosine": float(cosine.min())}
json.dump(result, open(out / "embedder.json", "w"), indent=1)
print(json.dumps(result))
PY
"$PY" benchmarks/serve_load.py --model "dlib-resnet?backend=torch&device=$DEVICE" --requests 100 \
    > "$OUT/serve-$DEVICE.json"

echo "== summary"
"$PY" - "$OUT" "$DEVICE" <<'PY'
import csv, json, sys
from pathlib import Path
out, device = Path(sys.argv[1]), sys.argv[2]
def last_accuracy(run):
    rows = list(csv.DictReader(open(out / run / "val.csv")))
    return float(rows[-1]["accuracy"])
collective = json.loads((out / "collective.json").read_text())
serve = json.loads((out / f"serve-{device}.json").read_text())
summary = {
    "device": device,
    "orl_accuracy": {f"{device}-bf16": last_accuracy(f"orl-{device}-bf16"), "cpu-fp32": last_accuracy("orl-cpu-fp32")},
    "collective": collective,
    "torchrun_accuracy": last_accuracy(f"orl-torchrun-{device}"),
    "embedder": json.loads((out / "embedder.json").read_text()),
    "serve": {k: serve[k] for k in ("requests_per_second", "all", "errors", "lost_enrolments")},
}
a = summary["orl_accuracy"]
summary["checks"] = {
    "bf16_accuracy_within_0.05_of_cpu": abs(a[f"{device}-bf16"] - a["cpu-fp32"]) <= 0.05,
    "embedder_worst_cosine_at_least_0.999": summary["embedder"]["worst_cosine"] >= 0.999,
    "collective_sum_ok": collective["sum_ok"],
    "serve_lost_nothing": serve["lost_enrolments"] == 0,
}
json.dump(summary, open(out / "summary.json", "w"), indent=1)
print(json.dumps(summary, indent=1))
sys.exit(0 if all(summary["checks"].values()) else 1)
PY
