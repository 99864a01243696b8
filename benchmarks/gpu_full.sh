#!/usr/bin/env bash
# The book at full size on a one-GPU machine; prints per-chapter times and every claim line.
# Such machines often have JAX but neither Keras nor papermill nor the data, and no internet, so:
#   here (with internet):  bash benchmarks/gpu_full.sh --prepare    # wheels for Python $PYVER + data into _gpu_bundle/
#   there (repo root):     bash benchmarks/gpu_full.sh [CHAPTERS]   # e.g. 00,04 (default: all, longest first)
# There, only the wheels of packages the machine lacks are installed (into $SITE, not over its own).
# Chapters run $JOBS at a time, each in its own process; JAX allocates GPU memory as it goes
# (no preallocation), so several processes share the one GPU. With $OUT set, the executed
# notebooks and status.json are copied there and the log is written there. Split a long run over several calls by
# naming chapters: the times add up. With $TIME_LIMIT (seconds) the run stops after that long and
# still reports what finished, with the notebooks as far as they got (*.running.ipynb).
# A claim that does not hold is printed (✗) and its chapter goes on, so that one run measures
# everything ($DNNBOOK_CLAIMS=report); the script then exits 1 and counts them.
# With VALIDATE=1 nbval re-executes each chapter as soon as it has run, in its slot, as
# `make book` does (`execute --validate`; the HTML build needs no GPU and is not run here).
# With $SEEDS (e.g. SEEDS=1,2) it runs the seed sweep instead (python -m dnnbook sweep), $JOBS
# chapters at once over all seeds, and brings back the sweep's table and notebooks.
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=${BUNDLE:-_gpu_bundle}
BACKEND=${BACKEND:-jax}
PROFILE=${PROFILE:-full}
PYVER=${PYVER:-3.12}
JOBS=${JOBS:-5}  # all five chapters at once: how the H200 run went (GPU use median 88%)
TIME_LIMIT=${TIME_LIMIT:-0}  # 0: no limit
SEEDS=${SEEDS:-}  # base seeds to sweep; empty: execute once at the chapters' own seeds
VALIDATE=${VALIDATE:-0}  # 1: validate with nbval too, as make book does
SITE=${SITE:-/tmp/dnnbook-site}
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
# what executing chapters needs beyond a GPU image's numpy, pandas, scipy, matplotlib,
# scikit-learn, tqdm, pyyaml and the backend itself
DEPS=(keras papermill nbformat nbclient ipykernel nbval)
# Keras at the version this checkout's tests ran with (the book hooks a few of its internals)
KERAS_PIN=${KERAS_PIN:-$($PY -c "import importlib.metadata as m; print(m.version('keras'))" 2>/dev/null || true)}
# their dependencies that the GPU image already holds (its package list, 2026-11): not bundled,
# which keeps the bundle under the 64 MiB a device call carries
ON_IMAGE="absl_py aiohttp attrs certifi charset_normalizer click h5py idna markdown_it_py mdurl ml_dtypes numpy
packaging psutil pygments python_dateutil pyyaml requests rich tqdm typing_extensions urllib3"

if [ "${1:-}" = "--prepare" ]; then
  rm -rf "$BUNDLE/wheels"; mkdir -p "$BUNDLE/wheels" "$BUNDLE/data"
  platforms=()
  for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
           manylinux2014_x86_64 manylinux1_x86_64 linux_x86_64; do platforms+=(--platform "$p"); done
  $PY -m pip download -q -d "$BUNDLE/wheels" --only-binary=:all: --implementation cp \
    --python-version "$PYVER" "${platforms[@]}" "${DEPS[@]/#keras/keras${KERAS_PIN:+==$KERAS_PIN}}"
  for name in $ON_IMAGE; do rm -f "$BUNDLE/wheels/$name"-[0-9]*.whl; done
  # every requirement of a bundled wheel (for Python $PYVER on Linux) must be bundled or on the image
  $PY - "$BUNDLE/wheels" "$PYVER" $ON_IMAGE <<'PY' || exit 1
import pathlib, re, sys, zipfile
from packaging.requirements import Requirement
wheels, pyver, on_image = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
have = {norm(w.name.split("-")[0]) for w in wheels.glob("*.whl")} | {norm(n) for n in on_image}
env = {"python_version": pyver, "python_full_version": pyver + ".0", "sys_platform": "linux",
       "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
       "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}
missing = set()
for wheel in wheels.glob("*.whl"):
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        for line in z.read(meta).decode().splitlines():
            if line.startswith("Requires-Dist:"):
                req = Requirement(line.split(":", 1)[1].strip())
                if (req.marker is None or req.marker.evaluate(env)) and norm(req.name) not in have:
                    missing.add(f"{req.name} (for {wheel.name.split('-')[0]})")
if missing:
    sys.exit("the bundle lacks what its wheels need and the GPU image may not hold: " + ", ".join(sorted(missing))
             + "\n  add them to DEPS (or to ON_IMAGE if the image has them)")
PY
  $PY -c "from dnnbook import data; import shutil, sys; d = data.find_fashion_mnist(); \
    sys.exit('Fashion-MNIST not found: run make data') if d is None else [shutil.copy(d / f, '$BUNDLE/data') for f in data.FASHION_FILES.values()]"
  echo "$(ls "$BUNDLE/wheels" | wc -l) wheels for Python $PYVER and the data in $BUNDLE: $(du -sh "$BUNDLE" | cut -f1)"
  exit 0
fi
# all chapters by default, longest first by the full profile's times on the CPU (chapter 01's
# 50-layer training the longest there): without recorded times they start in the order given
CHAPTERS=${1:-01,03,04,02,00}
[ -d "$BUNDLE/wheels" ] || { echo "no $BUNDLE/wheels: run 'bash benchmarks/gpu_full.sh --prepare' where there is internet, and carry $BUNDLE" >&2; exit 2; }

start=$(date +%s)
$PY - "$BUNDLE/wheels" "$SITE" <<'PY'
import importlib.metadata as md, pathlib, subprocess, sys

wheels, site = sorted(pathlib.Path(sys.argv[1]).glob("*.whl")), sys.argv[2]
def present(wheel):
    try:
        md.version(wheel.name.split("-")[0])
        return True
    except md.PackageNotFoundError:
        return False
need = [str(w) for w in wheels if not present(w)]
print(f"installing {len(need)} of {len(wheels)} wheels into {site} (the others are already here)", flush=True)
if need:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                           "--no-compile", "--upgrade", "--target", site, *need])
PY
export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export DNNBOOK_DATA="$PWD/$BUNDLE/data" KERAS_BACKEND="$BACKEND" DNNBOOK_BUILD="$PWD/_build/gpu-$PROFILE"
export XLA_PYTHON_CLIENT_PREALLOCATE=false DNNBOOK_CLAIMS=${DNNBOOK_CLAIMS:-report}
if ! XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_deterministic_ops=true" $PY -c "import jax; jax.numpy.zeros(1).block_until_ready()" 2>/dev/null; then
  export DNNBOOK_JAX_DETERMINISTIC=0; echo "this XLA lacks --xla_gpu_deterministic_ops: GPU reductions may vary"
fi
echo "install: $(( $(date +%s) - start )) s"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
mkdir -p "$DNNBOOK_BUILD"
log="${OUT:-$DNNBOOK_BUILD}/gpu_full.log"  # under $OUT as it is written: it comes back even if the run is cut off
start=$(date +%s)
if [ -n "${OUT:-}" ] && command -v nvidia-smi >/dev/null; then  # GPU use every 15 s, for the record
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 15 > "$OUT/gpu_use.csv" 2>&1 &
  trap "kill $! 2>/dev/null" EXIT
fi
set +e
if [ -n "$SEEDS" ]; then
  timeout -k 10 "$TIME_LIMIT" $PY -m dnnbook sweep --profile "$PROFILE" --backend "$BACKEND" --jobs "$JOBS" \
    --chapters "$CHAPTERS" --seeds "$SEEDS" > "$log" 2>&1
  code=$?
  cat "$DNNBOOK_BUILD/sweep/$PROFILE-$BACKEND/claims.md" 2>/dev/null || echo "no sweep table (stopped before its end?)"
  echo "sweep of $CHAPTERS at seeds $SEEDS, $JOBS chapters at once: $(( $(date +%s) - start )) s wall, exit $code"
  grep -E "done in|rror|FAILED" "$log" || true
  if [ -n "${OUT:-}" ]; then
    cp "$DNNBOOK_BUILD/sweep/$PROFILE-$BACKEND"/claims.* "$OUT/" 2>/dev/null || true
    tar czf "$OUT/sweep.tgz" -C "$DNNBOOK_BUILD" sweep 2>/dev/null || true
  fi
  exit $code
fi
timeout -k 10 "$TIME_LIMIT" $PY -m dnnbook execute --profile "$PROFILE" --backend "$BACKEND" --jobs "$JOBS" ${CHAPTERS:+--chapters "$CHAPTERS"} \
  $([ "$VALIDATE" = 1 ] && echo --validate) > "$log" 2>&1
code=$?
set -e
if [ "$code" = 124 ]; then  # stop the chapters' own processes too, so the notebooks stay as last saved
  pkill -f "dnnbook execute" || true; pkill -f "pytest.*nbval" || true; sleep 3
  echo "stopped after TIME_LIMIT=$TIME_LIMIT s; chapters not reported done below did not finish"
fi
if [ "$VALIDATE" = 1 ]; then grep -E "validated in|did NOT reproduce|nbval" "$log" | tail -n 12 || true; fi
grep -E "^\[|✓|✗|rror|done in|FAILED|environment|backend " "$log" | grep -vE "^ *\[[^]]+\] cell [0-9]+$" || true
echo "profile $PROFILE, backend $BACKEND, chapters $CHAPTERS, $JOBS at a time: $(( $(date +%s) - start )) s wall, exit $code"
$PY - <<'PY'
import json, os, pathlib
status = pathlib.Path(os.environ["DNNBOOK_BUILD"]) / "executed" / "status.json"
for name, s in (json.loads(status.read_text()) if status.exists() else {}).items():
    print(f"{name:<22} {s['seconds']:>7.1f} s  {s['environment']}")
PY
left=""
for c in ${CHAPTERS//,/ }; do grep -qE "^(\[1/1\] )?[0-9_]*${c}[a-z_]* done in" "$log" || left="$left${left:+,}$c"; done
[ -n "$left" ] && echo "not finished: $left (to run them in another call: bash benchmarks/gpu_full.sh $left)"
held=$(grep -cE "\] ✓ " "$log" || true); broken=$(grep -cE "\] ✗ " "$log" || true)
echo "claims: $held hold, $broken do not"
[ "$code" = 0 ] && [ "$broken" != 0 ] && code=1
if [ -n "${OUT:-}" ]; then  # few files: a device call brings back only a handful
  cp "$DNNBOOK_BUILD"/executed/status.json "$OUT/" 2>/dev/null || true
  tar czf "$OUT/notebooks.tgz" -C "$DNNBOOK_BUILD" executed/chapters failed 2>/dev/null || true
fi
exit $code
