#!/usr/bin/env bash
# The whole book at full size on a one-GPU machine, in one go; prints per-chapter times and
# every claim line. Such machines often lack TensorFlow and internet, so:
#   here (with internet):   bash benchmarks/gpu_full.sh --prepare   # wheels + data into _gpu_bundle/
#   there (repo root):      bash benchmarks/gpu_full.sh             # KERAS_BACKEND=jax by default
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=${BUNDLE:-_gpu_bundle}
BACKEND=${BACKEND:-jax}
PROFILE=${PROFILE:-full}
# everything dnnbook needs to execute chapters, except the backend framework itself
DEPS=(keras numpy pandas scipy matplotlib tqdm papermill nbformat nbclient ipykernel scikit-learn mnist1d pyyaml)

if [ "${1:-}" = "--prepare" ]; then
  mkdir -p "$BUNDLE/wheels" "$BUNDLE/data"
  python3 -m pip download -q -d "$BUNDLE/wheels" --python-version 3.11 --only-binary=:all: "${DEPS[@]}" || \
    python3 -m pip download -q -d "$BUNDLE/wheels" "${DEPS[@]}"
  python3 -c "from dnnbook import data; import shutil, sys; d = data.find_fashion_mnist(); \
    sys.exit('Fashion-MNIST not found: run make data') if d is None else [shutil.copy(d / f, '$BUNDLE/data') for f in data.FASHION_FILES.values()]"
  du -sh "$BUNDLE"
  exit 0
fi

python3 -m venv --system-site-packages .venv-gpu       # keeps the image's CUDA builds of JAX/PyTorch
.venv-gpu/bin/pip install -q --no-index --find-links "$BUNDLE/wheels" "${DEPS[@]}" 2>/dev/null || \
  .venv-gpu/bin/pip install -q "${DEPS[@]}"
.venv-gpu/bin/pip install -q --no-deps -e .
export DNNBOOK_DATA="$PWD/$BUNDLE/data" KERAS_BACKEND="$BACKEND" DNNBOOK_BUILD="$PWD/_build/gpu-$PROFILE"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
start=$(date +%s)
.venv-gpu/bin/python -m dnnbook execute --profile "$PROFILE" --backend "$BACKEND" | grep -E "^\[|✓|✗|error" || true
echo "whole book, profile $PROFILE, backend $BACKEND: $(( $(date +%s) - start )) s"
.venv-gpu/bin/python - <<'PY'
import json, os, pathlib
status = pathlib.Path(os.environ["DNNBOOK_BUILD"]) / "executed" / "status.json"
for name, s in json.loads(status.read_text()).items():
    print(f"{name:<22} {s['seconds']:>7.1f} s  {s['environment']}")
PY
