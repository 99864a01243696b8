"""Run the chapters the way a reader's Colab runtime would: Colab's package versions, dnnbook
installed as a chapter's first cell installs it, the chapters executed by Colab's own kernel stack.

    python tools/colab_check.py                    # every chapter, quick profile
    python tools/colab_check.py --chapters 00,01   # a selection

1. A virtual environment under ``_build/colab/env`` (Python 3.13, Colab's, where this machine has
   it) gets the snapshot's version of every package that dnnbook's runtime install touches, and
   the kernel stack a chapter runs on (ipykernel, jupyter_client, nbclient, nbformat). The
   snapshot is Colab's published ``pip freeze``: ``--freeze``, ``$DNNBOOK_COLAB_FREEZE`` or
   ``shared/colab/pip-freeze.txt`` beside the repository (or beside a folder above it). The
   environment is kept and reused until the snapshot or ``pyproject.toml`` changes.
2. dnnbook is installed with the pip command of ``chapters/00_baseline.ipynb``'s first code cell,
   the local checkout in place of the GitHub URL. Before it runs, ``pip install --dry-run
   --report`` must show that it upgrades, downgrades or removes none of the snapshot's packages;
   it may only add dnnbook and what Colab lacks.
3. Each chapter is executed with the environment's nbclient, ``PROFILE = "quick"`` injected after
   its ``parameters`` cell, ``DNNBOOK_CLAIMS=strict``: a claim that does not hold fails it.

``--prepare`` does step 1 only. ``make test`` runs it in the background from its start, so that
the environment installs while the other steps run; a check that starts while another process
holds the environment waits for it.

Exit status: 0 when every step passed, 1 when one failed, 2 for bad input. This file uses the
standard library only; inside the environment it also runs as the chapter executor
(``--execute-one``), with the environment's nbformat and nbclient.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "_build" / "colab"
ENV = WORK / "env"
STAMP = ENV / ".dnnbook-colab-stamp"
COLAB_PYTHON = (3, 13)
# the kernel stack a chapter runs on in Colab, installed at the snapshot's versions
KERNEL_STACK = ("ipykernel", "jupyter_client", "nbclient", "nbformat")
CLAIM_MIME = "application/vnd.dnnbook.claim+json"
CLAIM_HOLDS = "\u2713"  # dnnbook.claims.PASS
CELL_TIMEOUT_S = 900
INSTALL_CELL_NOTEBOOK = "00_baseline.ipynb"
# TensorFlow ops (op types) that have no deterministic GPU kernel: with op determinism on they
# raise UnimplementedError on a GPU (from the error messages in TensorFlow 2.20/2.21's kernels;
# the fused batch-norm gradient only with training off, the SVD only of one-column matrices, the
# two cross-entropy ops only as raw ops: the Python API takes a deterministic path). The segment
# reductions are not here: with determinism on they switch to deterministic kernels.
NO_DETERMINISTIC_GPU_KERNEL = (
    "AdjustContrast",
    "AdjustContrastv2",
    "Bincount",
    "DenseBincount",
    "CropAndResizeGradBoxes",
    "CropAndResizeGradImage",
    "DebugNumericSummaryV2",
    "DepthwiseConv2dNativeBackpropFilter",
    "Dilation2DBackpropFilter",
    "Dilation2DBackpropInput",
    "FakeQuantWithMinMaxVarsGradient",
    "FakeQuantWithMinMaxVarsPerChannelGradient",
    "FusedBatchNormGrad",
    "FusedBatchNormGradV2",
    "FusedBatchNormGradV3",
    "MaxPoolGrad",
    "MaxPoolGradV2",
    "MaxPoolGradWithArgmax",
    "ResizeNearestNeighborGrad",
    "SoftmaxCrossEntropyWithLogits",
    "SparseSoftmaxCrossEntropyWithLogits",
    "SparseTensorDenseMatMul",
    "Svd",
    "Timestamp",
    "ScatterAdd",
    "ScatterSub",
    "ScatterMul",
    "ScatterDiv",
    "ScatterNdAdd",
    "ScatterNdSub",
)
# --op-census: a first cell records the type of every TensorFlow op run or traced, a last one prints them
CENSUS_START = """# op census (tools/colab_check.py --op-census)
import os as _os
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from tensorflow.python.framework import op_callbacks as _op_callbacks
_DNNBOOK_OPS = set()
def _dnnbook_census(op_type, inputs, attrs, outputs, op_name=None, graph=None):
    _DNNBOOK_OPS.add(op_type.decode() if isinstance(op_type, bytes) else str(op_type))
_op_callbacks.add_op_callback(_dnnbook_census)
"""
CENSUS_END = (
    'import json as _json\nprint("DNNBOOK_OP_CENSUS " + _json.dumps(sorted(_DNNBOOK_OPS)))\n'
)
CENSUS_MARK = "DNNBOOK_OP_CENSUS "
# bump when the way the environment is built changes (invalidates cached environments)
RECIPE = "1"


class CheckError(RuntimeError):
    """A step of the check failed; the message says which and why."""


# ---------------------------------------------------------------- pure logic (unit-tested)


def normalize(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): ``Jupyter_Client`` -> ``jupyter-client``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_freeze(text: str) -> dict[str, str | None]:
    """``pip freeze`` output -> {normalized name: version}. ``name @ url`` lines give the version
    in a wheel's file name where there is one, else ``None``; comments and options are skipped."""
    out: dict[str, str | None] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("-") else ""
        if not line:
            continue
        if "==" in line:
            name, version = line.split("==", 1)
            out[normalize(name.split("[", 1)[0].strip())] = version.split(";", 1)[0].strip()
        elif " @ " in line:
            name, url = line.split(" @ ", 1)
            wheel = re.search(r"/[^/]+?-([^-/]+)-[^-/]+-[^-/]+-[^-/]+\.whl$", url.strip())
            version = wheel.group(1).replace("%2B", "+").replace("%2b", "+") if wheel else None
            out[normalize(name.strip())] = version
    return out


def constraints(freeze: dict[str, str | None]) -> str:
    """A pip constraints file that pins every package of the snapshot with a version."""
    return "".join(f"{name}=={version}\n" for name, version in sorted(freeze.items()) if version)


def install_args(cell_source: str, python: str, project: str) -> list[str]:
    """The argument list of the ``pip install`` that a chapter's install cell runs inside Colab,
    with ``sys.executable`` as ``python`` and its ``dnnbook @ git+...`` requirement pointing at
    ``project`` (a local checkout) instead.

    The cell runs with stand-ins for ``sys`` (``google.colab`` imported) and ``subprocess`` that
    record the command instead of running it."""
    import builtins
    import types

    calls: list[list[str]] = []
    fake_sys = types.SimpleNamespace(
        executable=python, modules={"google.colab": object()}, argv=[python]
    )
    fake_subprocess = types.SimpleNamespace(
        run=lambda cmd, *a, **k: calls.append(list(cmd)),
        check_call=lambda cmd, *a, **k: calls.append(list(cmd)),
        call=lambda cmd, *a, **k: calls.append(list(cmd)),
    )
    fakes = {"sys": fake_sys, "subprocess": fake_subprocess}

    def _import(name, *args, **kwargs):
        return fakes[name] if name in fakes else builtins.__import__(name, *args, **kwargs)

    exec(
        compile(cell_source, "<install cell>", "exec"),
        {"__builtins__": {**vars(builtins), "__import__": _import}},
    )
    for cmd in calls:
        if cmd[1:4] == ["-m", "pip", "install"]:
            return [
                re.sub(r"^dnnbook\s*@\s*git\+\S+$", f"dnnbook @ {project}", str(a)) for a in cmd
            ]
    raise CheckError(
        "the install cell runs no `[sys.executable, '-m', 'pip', 'install', ...]` inside Colab"
    )


def install_cell(notebook: dict) -> str:
    """The source of a notebook's first code cell (the chapter template's install cell)."""
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            return "".join(source) if isinstance(source, list) else source
    raise CheckError("the notebook has no code cell")


def classify(
    report: dict, installed: dict[str, str], freeze: dict[str, str | None], own: str = "dnnbook"
) -> tuple[list[str], list[str]]:
    """Split what a ``pip install --dry-run --report`` would install into (changed, added).

    changed: packages of the snapshot or of the environment that it would install at another
    version (an upgrade, a downgrade, a reinstall: the old one is removed); added: packages
    Colab lacks, as ``name version``. ``own`` (dnnbook itself) is neither."""
    changed, added = [], []
    for item in report.get("install", []):
        meta = item.get("metadata", {})
        name, version = normalize(meta.get("name", "?")), meta.get("version", "?")
        if name == normalize(own):
            continue
        before = installed.get(name) or freeze.get(name)
        if name in installed or name in freeze:
            changed.append(f"{name} {before or '?'} -> {version}")
        else:
            added.append(f"{name} {version}")
    return sorted(changed), sorted(added)


def snapshot_pins(report: dict, freeze: dict[str, str | None], own: str = "dnnbook") -> list[str]:
    """``name==version`` of every package in a resolution report that the snapshot ships
    (what the environment gets before dnnbook is installed)."""
    pins = []
    for item in report.get("install", []):
        meta = item.get("metadata", {})
        name = normalize(meta.get("name", ""))
        if name and name != normalize(own) and freeze.get(name):
            pins.append(f"{name}=={freeze[name]}")
    return sorted(set(pins))


def env_key(*parts: str | bytes) -> str:
    """A digest of what the cached environment was built from."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()


def select(names: list[str], wanted: str) -> list[str]:
    """Chapter notebook names matching a comma-separated selection by number or name
    (``00,01``, ``01_gradients``, ``gradients``); all of them for an empty selection."""
    picks = [w.strip() for w in wanted.split(",") if w.strip()]
    if not picks:
        return sorted(names)
    chosen = []
    for pick in picks:
        hits = [
            n
            for n in sorted(names)
            if Path(n).stem == pick
            or Path(n).stem.split("_", 1)[0] == pick
            or Path(n).stem.split("_", 1)[-1] == pick
        ]
        if not hits:
            stems = ", ".join(Path(n).stem for n in sorted(names))
            raise CheckError(f"no chapter {pick!r}; choose from: {stems}")
        chosen += [h for h in hits if h not in chosen]
    return chosen


def inject_parameters(notebook: dict, params: dict[str, object]) -> dict:
    """A copy of the notebook with a cell assigning ``params`` right after its cell tagged
    ``parameters`` (as papermill does; the tagged cell keeps the defaults)."""
    cells = list(notebook.get("cells", []))
    where = next(
        (i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])),
        None,
    )
    if where is None:
        raise CheckError("the chapter has no cell tagged `parameters`")
    source = "# Parameters\n" + "".join(f"{k} = {v!r}\n" for k, v in params.items())
    cell = {
        "cell_type": "code",
        "execution_count": None,
        "id": "injected-parameters",
        "metadata": {"tags": ["injected-parameters"]},
        "outputs": [],
        "source": source,
    }
    return {**notebook, "cells": cells[: where + 1] + [cell] + cells[where + 1 :]}


def _code_cell(source: str, tag: str) -> dict:
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": tag,
        "metadata": {"tags": [tag]},
        "outputs": [],
        "source": source,
    }


def add_census(notebook: dict) -> dict:
    """A copy of the notebook that records the TensorFlow ops it runs (first and last cells)."""
    cells = notebook.get("cells", [])
    return {
        **notebook,
        "cells": [_code_cell(CENSUS_START, "op-census")]
        + list(cells)
        + [_code_cell(CENSUS_END, "op-census-report")],
    }


def census(notebook: dict) -> list[str]:
    """The op types an executed notebook with :func:`add_census` cells printed."""
    for line in _stream_lines(notebook):
        if line.startswith(CENSUS_MARK):
            return json.loads(line[len(CENSUS_MARK) :])
    return []


def without_deterministic_kernel(ops) -> list[str]:
    """The ops among ``ops`` that have no deterministic GPU kernel in TensorFlow."""
    return sorted(set(ops) & set(NO_DETERMINISTIC_GPU_KERNEL))


def _stream_lines(notebook: dict):
    for cell in notebook.get("cells", []):
        for out in cell.get("outputs", []):
            text = out.get("text", "")
            yield from ("".join(text) if isinstance(text, list) else text).splitlines()


def claim_records(notebook: dict) -> list[dict]:
    """The claim records a notebook's outputs hold (display data of the claim MIME type)."""
    return [
        out["data"][CLAIM_MIME]
        for cell in notebook.get("cells", [])
        for out in cell.get("outputs", [])
        if out.get("output_type") in ("display_data", "execute_result")
        and CLAIM_MIME in out.get("data", {})
    ]


def environment_line(notebook: dict) -> str:
    """The line ``dnnbook.runtime.setup`` printed (backend, versions, device...), if any."""
    return next((line for line in _stream_lines(notebook) if line.startswith("backend ")), "")


def summary(changed: list[str], added: list[str]) -> str:
    """The install report's line."""
    return f"changed: {len(changed)}" + (f" {changed}" if changed else "") + f", added: {added}"


# ---------------------------------------------------------------- the steps


def _log(msg: str) -> None:
    print(f"[colab-check] {msg}", flush=True)


def _pip_noise(line: str) -> bool:
    return (
        line.startswith("WARNING: Location ")
        or "pip version" in line
        or line.startswith("[notice]")
    )


def _run(cmd: list[str], what: str, **kw) -> str:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    out = "\n".join(line for line in proc.stdout.splitlines() if not _pip_noise(line))
    if proc.returncode != 0:
        raise CheckError(f"{what} failed (exit {proc.returncode}):\n{out[-4000:]}")
    return out


def find_freeze(given: str | None) -> Path:
    """``--freeze``, ``$DNNBOOK_COLAB_FREEZE``, else ``shared/colab/pip-freeze.txt`` beside the
    repository or beside a folder above it (a clone made inside another checkout finds it too),
    else the copy in ``tools/colab/`` (so a clone alone, e.g. on a hosted CI runner, has one)."""
    beside = [parent / "shared/colab/pip-freeze.txt" for parent in ROOT.parents]
    kept = ROOT / "tools/colab/pip-freeze.txt"  # the copy kept with the code (see its README)
    for candidate in (given, os.environ.get("DNNBOOK_COLAB_FREEZE"), *beside, kept):
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve()
    raise CheckError(
        "Colab's package list not found: pass --freeze PATH or set $DNNBOOK_COLAB_FREEZE "
        f"(looked for {beside[0]} and the same path above it)"
    )


def _python_version(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = out.stdout.split()
    return (int(parts[0]), int(parts[1])) if out.returncode == 0 and len(parts) == 2 else None


def find_python(given: str | None) -> str:
    """Colab's Python (3.13): ``--python``, else ``python3.13`` on PATH or in pyenv, else this
    Python with a warning."""
    if given:
        return given
    want = "python%d.%d" % COLAB_PYTHON
    pyenv = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = [shutil.which(want)] + sorted(
        glob.glob(f"{pyenv}/versions/{COLAB_PYTHON[0]}.{COLAB_PYTHON[1]}*/bin/{want}")
    )
    for candidate in filter(None, candidates):
        if _python_version(candidate) == COLAB_PYTHON:
            return candidate
    _log(
        f"WARNING: no Python {COLAB_PYTHON[0]}.{COLAB_PYTHON[1]} (Colab's) on this machine; "
        f"using {sys.executable} ({sys.version.split()[0]}); the snapshot's wheels may not fit it"
    )
    return sys.executable


def project_copy() -> Path:
    """A copy of the files pip builds dnnbook from (pip builds in the source tree: its ``build/``
    stays out of the checkout)."""
    src = WORK / "src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "dnnbook", src / "dnnbook", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return src


def _env_python() -> str:
    return str(ENV / "bin" / "python")


def _installed(python: str) -> dict[str, str]:
    code = (
        "import json, importlib.metadata as m; print(json.dumps({d.metadata['Name']: d.version "
        "for d in m.distributions() if d.metadata['Name']}))"
    )
    return {
        normalize(k): v
        for k, v in json.loads(_run([python, "-c", code], "listing packages")).items()
    }


@contextlib.contextmanager
def env_lock():
    """Hold the environment for one process: a second one (``make test`` builds it with
    ``--prepare`` in the background while the other steps run) waits here until it is built."""
    WORK.mkdir(parents=True, exist_ok=True)
    with open(WORK / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log("waiting for the environment that another process is building")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build_env(python: str, freeze_path: Path, freeze: dict[str, str | None], rebuild: bool) -> None:
    """Create (or reuse) the environment with the snapshot's versions of what dnnbook touches."""
    key = env_key(RECIPE, freeze_path.read_bytes(), (ROOT / "pyproject.toml").read_bytes(), python)
    if not rebuild and STAMP.is_file() and STAMP.read_text().strip() == key:
        _log(f"reusing {ENV.relative_to(ROOT)} (snapshot and pyproject.toml unchanged)")
        return
    t0 = time.perf_counter()
    shutil.rmtree(ENV, ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    _log(f"creating {ENV.relative_to(ROOT)} with {python}")
    _run([python, "-m", "venv", str(ENV)], "creating the environment")
    pip = [_env_python(), "-m", "pip"]
    if freeze.get("pip"):  # Colab's own pip resolves the chapter's install
        _run(pip + ["install", "-q", f"pip=={freeze['pip']}"], "installing Colab's pip")
    pins = WORK / "constraints.txt"
    pins.write_text(constraints(freeze))
    report_path = WORK / "resolve.json"
    # what dnnbook's runtime install and the kernel stack touch, resolved at the snapshot's versions
    _run(
        pip
        + [
            "install",
            "-q",
            "--dry-run",
            "--ignore-installed",
            "--report",
            str(report_path),
            "-c",
            str(pins),
            str(project_copy()),
            *KERNEL_STACK,
        ],
        "resolving dnnbook's dependencies at Colab's versions (a lower bound above Colab's?)",
    )
    wanted = snapshot_pins(json.loads(report_path.read_text()), freeze)
    _log(f"installing {len(wanted)} packages at Colab's versions")
    _run(pip + ["install", "-q", "-c", str(pins), *wanted], "installing the snapshot's packages")
    STAMP.write_text(key + "\n")
    _log(f"environment ready in {time.perf_counter() - t0:.0f} s")


def install_dnnbook(freeze: dict[str, str | None]) -> list[str]:
    """Install dnnbook with the chapter's own pip command; fail if it would change Colab's
    packages. Returns the packages it added."""
    python = _env_python()
    # back to the snapshot: drop dnnbook and whatever its last install added
    extra = sorted(n for n in _installed(python) if n not in freeze)
    if extra:
        _run(
            [python, "-m", "pip", "uninstall", "-q", "-y", *extra],
            "removing what the last install added",
        )
    notebook = json.loads((ROOT / "chapters" / INSTALL_CELL_NOTEBOOK).read_text(encoding="utf-8"))
    args = install_args(install_cell(notebook), python, project_copy().as_uri())
    _log("the chapter's install: " + " ".join(a if " " not in a else repr(a) for a in args[1:]))
    before = _installed(python)
    report_path = WORK / "install.json"
    _run(args + ["--dry-run", "--report", str(report_path)], "the install's dry run")
    changed, added = classify(json.loads(report_path.read_text()), before, freeze)
    _log("install report: " + summary(changed, added))
    if changed:
        raise CheckError(
            "installing dnnbook would change packages that Colab ships: " + "; ".join(changed)
        )
    _run(args, "installing dnnbook as the chapter does")
    after = _installed(python)
    moved = [f"{n} {v} -> {after.get(n)}" for n, v in before.items() if after.get(n) != v]
    if moved:
        raise CheckError("the install changed packages that Colab ships: " + "; ".join(moved))
    return added


def find_data() -> str | None:
    for candidate in (
        os.environ.get("DNNBOOK_DATA"),
        "/usr/share/datasets/fashion-mnist",
        str(Path.home() / ".keras/datasets/fashion-mnist"),
    ):
        if candidate and Path(candidate).is_dir():
            return candidate
    return None


def run_chapters(chapters: list[str], seed: int | None, op_census: bool = False) -> list[dict]:
    """Execute each chapter in the environment; one result per chapter."""
    data_dir = find_data()
    if not data_dir:
        raise CheckError(
            "Fashion-MNIST not found in $DNNBOOK_DATA or /usr/share/datasets/fashion-mnist "
            "(`make data` installs Debian's dataset-fashion-mnist)"
        )
    env = {
        **os.environ,
        "DNNBOOK_CLAIMS": "strict",
        "DNNBOOK_DATA": data_dir,
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        # the environment's own kernel spec, not one a user installed elsewhere
        "JUPYTER_DATA_DIR": str(WORK / "jupyter"),
        "JUPYTER_PATH": str(ENV / "share" / "jupyter"),
        "PYTHONNOUSERSITE": "1",
    }
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    results = []
    for name in chapters:
        out = WORK / "executed" / name
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            _env_python(),
            str(Path(__file__).resolve()),
            "--execute-one",
            str(ROOT / "chapters" / name),
            str(out),
        ]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        if op_census:
            cmd.append("--op-census")
        _log(f"executing {name} (quick profile)")
        t0 = time.perf_counter()
        proc = subprocess.run(
            cmd,
            env=env,
            cwd=ROOT / "chapters",
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        secs = time.perf_counter() - t0
        result = {"chapter": Path(name).stem, "seconds": secs, "ok": proc.returncode == 0}
        tail = proc.stdout.strip().splitlines()
        try:
            result.update(json.loads(tail[-1]))
        except (IndexError, json.JSONDecodeError):
            result["error"] = "\n".join(tail[-40:])
        results.append(result)
        held = f"{result.get('held', 0)}/{result.get('claims', 0)} claims held"
        _log(
            f"{result['chapter']}: {'ok' if result['ok'] else 'FAILED'} in {secs:.0f} s, {held}"
            + (f" | {result['environment']}" if result.get("environment") else "")
        )
        if not result["ok"]:
            print(result.get("error", ""), flush=True)
    return results


def execute_one(source: str, target: str, seed: int | None, op_census: bool = False) -> int:
    """Inside the environment: execute one chapter with nbclient; print a JSON summary line."""
    import nbclient
    import nbformat

    notebook = json.loads(Path(source).read_text(encoding="utf-8"))
    params: dict[str, object] = {"PROFILE": "quick"}
    if seed is not None:
        params["SEED"] = seed
    notebook = inject_parameters(notebook, params)
    if op_census:
        notebook = add_census(notebook)
    nb = nbformat.reads(json.dumps(notebook), as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(Path(source).parent)}},
    )
    error = None
    try:
        client.execute()
    except Exception as exc:  # a failed cell or claim: keep the partial notebook, report the error
        error = f"{type(exc).__name__}: {exc}"
    Path(target).write_text(nbformat.writes(nb), encoding="utf-8")
    records = claim_records(nb)
    summary_ = {
        "claims": len(records),
        "held": sum(r.get("status") == CLAIM_HOLDS for r in records),
        "environment": environment_line(nb),
        "nbclient": nbclient.__version__,
    }
    if op_census:
        summary_["ops"] = census(nb)
    if error:
        print(error[-6000:], flush=True)
        summary_["error"] = error[-6000:]
    print(json.dumps(summary_), flush=True)
    return 1 if error else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tools/colab_check.py", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--chapters", default="", help="comma-separated chapters by number or name; default all"
    )
    p.add_argument(
        "--freeze",
        help="Colab's pip freeze (default $DNNBOOK_COLAB_FREEZE or ../shared/colab/pip-freeze.txt)",
    )
    p.add_argument("--python", help="the Python to build the environment with (default python3.13)")
    p.add_argument(
        "--seed", type=int, help="base seed passed to every chapter (default: the chapter's)"
    )
    p.add_argument(
        "--rebuild", action="store_true", help="rebuild the environment even if it is up to date"
    )
    p.add_argument(
        "--prepare",
        action="store_true",
        help="only build (or reuse) the environment, to run chapters in it later",
    )
    p.add_argument(
        "--op-census",
        action="store_true",
        help="also record the TensorFlow ops each chapter runs and "
        "list those without a deterministic GPU kernel (_build/colab/op_census.json)",
    )
    p.add_argument("--execute-one", nargs=2, metavar=("SOURCE", "TARGET"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.execute_one:
        return execute_one(*args.execute_one, args.seed, args.op_census)
    t0 = time.perf_counter()
    try:
        chapters = select([p.name for p in (ROOT / "chapters").glob("*.ipynb")], args.chapters)
        freeze_path = find_freeze(args.freeze)
        freeze = parse_freeze(freeze_path.read_text(encoding="utf-8"))
        _log(f"snapshot {freeze_path} ({len(freeze)} packages)")
        with env_lock():
            build_env(find_python(args.python), freeze_path, freeze, args.rebuild)
            if args.prepare:
                return 0
            added = install_dnnbook(freeze)
            results = run_chapters(chapters, args.seed, args.op_census)
    except CheckError as exc:
        print(f"[colab-check] FAILED: {exc}", file=sys.stderr, flush=True)
        return 2 if "no chapter" in str(exc) else 1
    failed = [r["chapter"] for r in results if not r["ok"]]
    print("\nchapter               seconds  claims held", flush=True)
    for r in results:
        print(
            f"{r['chapter']:<20} {r['seconds']:>8.0f}  {r.get('held', 0)}/{r.get('claims', 0)}"
            + ("  FAILED" if not r["ok"] else ""),
            flush=True,
        )
    total_claims = sum(r.get("claims", 0) for r in results)
    held = sum(r.get("held", 0) for r in results)
    print(f"install: changed 0, added {added}", flush=True)
    if args.op_census:
        ops = {r["chapter"]: r.get("ops", []) for r in results}
        (WORK / "op_census.json").write_text(json.dumps(ops, indent=1) + "\n")
        every = sorted(set().union(*ops.values()))
        hits = {c: without_deterministic_kernel(o) for c, o in ops.items()}
        print(
            f"op census: {len(every)} TensorFlow op types (_build/colab/op_census.json); without a "
            f"deterministic GPU kernel: {({c: h for c, h in hits.items() if h}) or 'none'}",
            flush=True,
        )
    print(
        f"claims held: {held}/{total_claims}; chapters failed: {failed or 'none'}; "
        f"check took {time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
