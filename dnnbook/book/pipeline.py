"""The book pipeline: execute (papermill) → validate (nbval) → build (Jupyter Book).

Sources in ``chapters/`` are never modified: executed copies go to ``_build/executed/``,
a failed chapter's notebook to ``_build/failed/`` and the HTML book to ``_build/html``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(os.environ.get("DNNBOOK_ROOT", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("DNNBOOK_BUILD") or ROOT / "_build")
BUILD = BUILD if BUILD.is_absolute() else ROOT / BUILD
EXECUTED = BUILD / "executed"
FAILED = BUILD / "failed"
HTML = BUILD / "html"
RESULTS = ROOT / "results"  # the committed sweep tables, shown by the book
STATUS = EXECUTED / "status.json"
BOOK_FILES = ("_config.yml", "_toc.yml", "intro.md", "_static")
CELL_TIMEOUT = {"quick": 900, "full": 3600}


class PipelineError(RuntimeError):
    """A pipeline step failed; the message says which chapter/cell and where to look."""


class UsageError(ValueError):
    """Bad command-line input (unknown chapter, profile or backend)."""


@dataclass(frozen=True)
class Chapter:
    """One chapter source notebook."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def number(self) -> str:
        return self.name.split("_", 1)[0]

    @property
    def budget(self) -> float:
        """The quick-profile time budget the chapter reports against (``budget_s=`` in its
        last cell), in seconds; 0 if it states none."""
        found = re.search(r"budget_s=(\d+)", self.path.read_text(encoding="utf-8"))
        return float(found.group(1)) if found else 0.0


def chapters(root: Path | None = None) -> list[Chapter]:
    """All chapter sources, in order."""
    return [Chapter(p) for p in sorted(((root or ROOT) / "chapters").glob("[0-9][0-9]_*.ipynb"))]


def select(wanted: list[str] | None, root: Path | None = None) -> list[Chapter]:
    """The chapters named by number (``01``), stem (``01_gradients``) or topic (``gradients``)."""
    available = chapters(root)
    if not wanted:
        return available
    chosen = []
    for w in wanted:
        match = [c for c in available if w in (c.name, c.number, c.name.split("_", 1)[-1])]
        if not match:
            names = ", ".join(c.name for c in available)
            raise UsageError(f"unknown chapter {w!r}; choose from: {names}")
        chosen += [c for c in match if c not in chosen]
    return chosen


class _Progress(logging.Handler):
    """Relays papermill's cell log to the terminal, prefixed with the chapter name."""

    def __init__(self, chapter: str):
        super().__init__()
        self.chapter = chapter
        self.cell = re.compile(r"Executing Cell (\d+)")

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage().rstrip()
        if not msg or msg.startswith("Ending Cell") or msg.startswith("Executing notebook"):
            return
        m = self.cell.search(msg)
        if m:
            msg = f"cell {m.group(1)}"
        for line in msg.splitlines():
            if line.strip():
                print(f"  [{self.chapter}] {line}", flush=True)


def _env_line(nb_path: Path) -> str:
    """The environment line printed by ``runtime.setup`` in an executed notebook."""
    nb = json.loads(nb_path.read_text())
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", ""))
            for line in text.splitlines():
                if line.startswith("backend "):
                    return line
    return ""


def execute(
    chapter: Chapter, profile: str, *, seed: int | None = None, quiet: bool = False
) -> float:
    """Execute one chapter into ``_build/executed/chapters``; return its wall time in seconds."""
    import papermill as pm

    from dnnbook.book.kernels import AsyncIPCKernelManager

    EXECUTED.joinpath("chapters").mkdir(parents=True, exist_ok=True)
    out = EXECUTED / "chapters" / chapter.path.name
    failed = FAILED / chapter.path.name
    out.unlink(missing_ok=True)
    params = {"PROFILE": profile}
    if seed is not None:
        params["SEED"] = int(seed)
    logger = logging.getLogger("papermill")
    handler = None if quiet else _Progress(chapter.name)
    if handler:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    start = time.perf_counter()
    tmp = out.with_suffix(".running.ipynb")
    try:
        pm.execute_notebook(
            str(chapter.path),
            str(tmp),
            parameters=params,
            kernel_name="python3",
            log_output=not quiet,
            progress_bar=False,
            cwd=str(chapter.path.parent),
            execution_timeout=CELL_TIMEOUT.get(profile, 3600),
            kernel_manager_class=AsyncIPCKernelManager,
        )
    except pm.PapermillExecutionError as exc:
        FAILED.mkdir(parents=True, exist_ok=True)
        shutil.move(tmp, failed)
        raise PipelineError(
            f"chapter {chapter.name} failed in cell {exc.exec_count} "
            f"(code cell index {exc.cell_index}): {exc.ename}: {exc.evalue}\n"
            f"  the executed notebook is kept for inspection at {failed}"
        ) from None
    except Exception as exc:
        if tmp.exists():
            FAILED.mkdir(parents=True, exist_ok=True)
            shutil.move(tmp, failed)
        raise PipelineError(
            f"chapter {chapter.name} could not be executed: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        if handler:
            logger.removeHandler(handler)
    seconds = time.perf_counter() - start
    tmp.replace(out)
    failed.unlink(missing_ok=True)
    _record_status(chapter, profile, seconds, _env_line(out), seed)
    return seconds


def _record_status(
    chapter: Chapter, profile: str, seconds: float, env_line: str, seed: int | None = None
) -> None:
    """Record how ``chapter`` ran in ``status.json`` (the status page and the run banners);
    ``seed`` is the base seed given, else the one the environment line names."""
    import fcntl

    if seed is None:
        found = re.search(r"\bseed (\d+)", env_line)
        seed = int(found.group(1)) if found else None

    with open(STATUS.with_suffix(".lock"), "w") as lock:  # chapters may finish at once (--jobs)
        fcntl.flock(lock, fcntl.LOCK_EX)
        status = json.loads(STATUS.read_text()) if STATUS.exists() else {}
        status[chapter.name] = {
            "profile": profile,
            "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
            "environment": env_line,
            "seed": seed,
            "seconds": round(seconds, 1),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        }
        STATUS.write_text(json.dumps(status, indent=2))


def longest_first(selected: list[Chapter], profile: str | None) -> list[Chapter]:
    """``selected``, longest first, so that running several at once does not end with the
    longest one alone: by the time last recorded for ``profile`` (``status.json``; ``None``:
    whatever profile ran last); without one for every chapter (a fresh checkout), by their
    budgets for the quick profile, and in the order given for another."""
    last = json.loads(STATUS.read_text()) if STATUS.exists() else {}
    recorded = {}
    for c in selected:
        rec = last.get(c.name, {})
        if "seconds" in rec and profile in (None, rec.get("profile")):
            recorded[c.name] = float(rec["seconds"])
    if len(recorded) == len(selected):  # a recorded time and a budget do not compare
        return sorted(selected, key=lambda c: -recorded[c.name])
    if profile == "quick":
        return sorted(selected, key=lambda c: -c.budget)
    return list(selected)


def execute_command(
    profile: str,
    *,
    chapters: str = "",
    backend: str | None = None,
    seed: int | None = None,
    jobs: int | None = None,
) -> list[str]:
    """The ``python -m dnnbook execute`` command line for these options (each one left out
    when not given, so that the command's own default applies)."""
    cmd = [sys.executable, "-m", "dnnbook", "execute", "--profile", profile]
    for option, value in (
        ("--chapters", chapters),
        ("--backend", backend),
        ("--seed", seed),
        ("--jobs", jobs),
    ):
        if value not in (None, ""):
            cmd += [option, str(value)]
    return cmd


def relay_lines(
    cmd: list[str],
    cwd: Path | str,
    prefix: str,
    *,
    env: dict | None = None,
    keep: Callable[[str], bool] | None = None,
    lock: Any = None,
) -> int:
    """Run ``cmd`` and pass its output on line by line with ``prefix`` (the lines ``keep``
    accepts, each printed under ``lock`` when given), so that runs side by side stay readable.
    Its exit status."""
    with subprocess.Popen(
        cmd,
        env=os.environ.copy() if env is None else env,
        cwd=str(cwd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        for line in proc.stdout:
            if keep is None or keep(line):
                with lock or contextlib.nullcontext():
                    print(prefix + line.rstrip("\n"), flush=True)
    return proc.returncode


def execute_parallel(
    selected: list[Chapter],
    profile: str,
    *,
    jobs: int,
    seed: int | None = None,
    validate: bool = False,
) -> dict[str, float]:
    """Execute ``selected`` with up to ``jobs`` chapters at once, each in its own
    ``python -m dnnbook execute`` process (in :func:`longest_first` order); their
    output is relayed line by line. With ``validate``, each chapter is re-executed with nbval
    (:func:`nbval_command`) as soon as its own execution ends, in the same slot: no chapter
    waits for the slowest one's execution. Returns each chapter's execution time as its own
    process recorded it (in ``status.json``); raises :class:`PipelineError` naming the chapters
    that failed, and at which step, after all have run."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    order = longest_first(selected, profile)
    lock = threading.Lock()
    summary = re.compile(r"^(\[1/1\] |Execution times|  \S+ +[\d.]+ s$)")

    def say(line: str) -> None:
        with lock:
            print(line, flush=True)

    def relay(cmd: list[str], cwd: Path, prefix: str = "") -> int:
        def keep(line: str) -> bool:  # the parent prints its own summary
            return bool(line.strip()) and not summary.match(line)

        return relay_lines(cmd, cwd, prefix, keep=keep, lock=lock)

    def one(chapter: Chapter) -> str | None:
        """Why ``chapter`` failed (None if it did not)."""
        start = time.perf_counter()
        code = relay(execute_command(profile, chapters=chapter.name, seed=seed, jobs=1), ROOT)
        secs = time.perf_counter() - start
        say(f"{chapter.name} {'done' if code == 0 else 'FAILED'} in {secs:.0f} s")
        if code != 0:
            return f"{chapter.name} (execution)"
        if not validate:
            return None
        start = time.perf_counter()
        path = EXECUTED / "chapters" / chapter.path.name
        code = relay(nbval_command([path], EXECUTED), path.parent, f"  [{chapter.name} nbval] ")
        secs = time.perf_counter() - start
        say(f"{chapter.name} {'validated' if code == 0 else 'did NOT reproduce'} in {secs:.0f} s")
        return None if code == 0 else f"{chapter.name} (nbval: its checked cells did not reproduce)"

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        failed = [why for why in pool.map(one, order) if why]
    if failed:
        raise PipelineError("failed: " + ", ".join(failed) + " (see the messages above)")
    recorded = json.loads(STATUS.read_text())  # each child's own measure, as seed after seed
    return {c.name: float(recorded[c.name]["seconds"]) for c in selected}


def executed_notebooks(selected: list[Chapter]) -> list[Path]:
    """The executed copies of ``selected``; a clear error if any is missing."""
    paths = [EXECUTED / "chapters" / c.path.name for c in selected]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise PipelineError(
            "not executed yet: "
            + ", ".join(p.stem for p in missing)
            + " (run `python -m dnnbook execute` first)"
        )
    return paths


def nbval_command(paths: list[Path], rootdir: Path, *, plugin: bool = True) -> list[str]:
    """The pytest command line that re-executes ``paths`` with nbval and compares their checked
    cells; with ``plugin``, the kernels listen on IPC sockets (:mod:`dnnbook.book.kernels`)."""
    return [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *(["-p", "dnnbook.book.kernels"] if plugin else []),
        "--nbval-lax",
        "--nbval-current-env",
        "--nbval-sanitize-with",
        str(ROOT / "nbval_sanitize.cfg"),
        "--nbval-cell-timeout",
        "3600",
        "--rootdir",
        str(rootdir),
        *map(str, paths),
    ]


def validate(selected: list[Chapter], jobs: int = 1) -> None:
    """Re-execute the executed chapters with nbval; checked cells must reproduce exactly.
    ``jobs`` > 1 validates that many chapters at once (pytest-xdist, one chapter per worker)."""
    paths = executed_notebooks(
        longest_first(selected, None) if jobs > 1 else selected
    )  # xdist's order
    cmd = nbval_command(paths, EXECUTED)
    if jobs > 1 and len(paths) > 1:
        cmd[4:4] = ["-n", str(min(jobs, len(paths))), "--dist", "loadfile"]
    print("validating with nbval: " + ", ".join(p.stem for p in paths), flush=True)
    if subprocess.call(cmd, cwd=EXECUTED / "chapters") != 0:
        raise PipelineError(
            "nbval: a re-executed chapter did not reproduce its checked cells (see the diff above)"
        )


# the Colab badge a chapter shows (absolute, for GitHub and Colab) and the book's own copy
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
LOCAL_BADGE = "../_static/colab-badge.svg"


def _stage_notebook(src: Path, dst: Path, run: dict | None = None) -> None:
    """Copy an executed notebook for rendering, hiding papermill's injected-parameters cell and
    showing the book's own Colab badge image (a page loads nothing from the internet); with
    ``run`` (its ``status.json`` record), a run banner follows the title cell."""
    from dnnbook.book import pages

    nb = json.loads(src.read_text())
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"])
            if COLAB_BADGE in text:
                cell["source"] = text.replace(COLAB_BADGE, LOCAL_BADGE)
    if run:
        first = next((i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown"), -1)
        banner = {
            "cell_type": "markdown",
            "id": "dnnbook-run-banner",
            "metadata": {"tags": ["dnnbook-run-banner"]},
            "source": pages.run_banner(run),
        }
        nb["cells"].insert(first + 1, banner)
    dst.write_text(json.dumps(nb, indent=1, ensure_ascii=False))


# MathJax 3 (npm's ``mathjax``, its ``es5`` folder), served by the book itself so that formulas
# render offline; ``make install`` puts it in the virtual environment
MATHJAX_SCRIPT = "tex-mml-chtml.js"
# what a page loads of it: the component, its fonts and the extensions TeX input loads on demand
# (not the speech engine, the SVG output or the other combined components)
MATHJAX_SKIP = (
    "sre",
    "*svg*",
    "*-full*",
    "node-main.js",
    "latest.js",
    "mml-chtml.js",
    "tex-chtml.js",
)


def find_mathjax() -> Path | None:
    """The folder of a local MathJax 3 (``es5``, holding ``tex-mml-chtml.js``): ``$DNNBOOK_MATHJAX``,
    else the virtual environment's (``make install``), else a ``node_modules`` in the book's root."""
    env = os.environ.get("DNNBOOK_MATHJAX", "")
    candidates = [Path(env).expanduser()] if env and env != "cdn" else []
    candidates += [
        Path(sys.prefix) / "mathjax" / "node_modules" / "mathjax" / "es5",
        ROOT / "node_modules" / "mathjax" / "es5",
    ]
    return next((d for d in candidates if (d / MATHJAX_SCRIPT).is_file()), None)


def _stage_mathjax(site: Path) -> Path | None:
    """Point Sphinx's ``mathjax_path`` in the staged ``_config.yml`` at the book's own MathJax
    (copied in by :func:`_copy_mathjax` after Jupyter Book, which would otherwise add every
    script under ``_static`` to every page); return the MathJax folder. ``DNNBOOK_MATHJAX=cdn``
    keeps Sphinx's CDN (pages then need the internet for their formulas): returns None."""
    import yaml

    if os.environ.get("DNNBOOK_MATHJAX") == "cdn":
        return None
    found = find_mathjax()
    if found is None:
        raise PipelineError(
            "no local MathJax: formulas would load from a CDN and show as raw TeX "
            "offline. `make install` installs it (npm's mathjax 3 into the virtual "
            "environment); or point $DNNBOOK_MATHJAX at a MathJax 3 `es5` folder, "
            "or set DNNBOOK_MATHJAX=cdn to load it from the internet"
        )
    config_path = site / "_config.yml"
    config = yaml.safe_load(config_path.read_text())
    sphinx_config = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx_config["mathjax_path"] = f"mathjax/{MATHJAX_SCRIPT}"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return found


def _copy_mathjax(found: Path | None, html_root: Path) -> None:
    """Copy MathJax (what a page loads of it) into the built book's ``_static/mathjax``."""
    if found is not None:
        shutil.copytree(
            found,
            html_root / "_static" / "mathjax",
            ignore=shutil.ignore_patterns(*MATHJAX_SKIP),
            dirs_exist_ok=True,
        )


def build(selected: list[Chapter] | None = None) -> Path:
    """Render the executed chapters to ``_build/html``; return the path of ``index.html``."""
    from dnnbook.book import pages

    selected = selected if selected is not None else chapters()
    paths = executed_notebooks(selected)
    if HTML.exists():
        shutil.rmtree(HTML)  # never leave an old book where a failed build should be
    site = BUILD / "site"
    if site.exists():
        shutil.rmtree(site)
    site.mkdir(parents=True)
    for name in BOOK_FILES:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, site / name)
    mathjax = _stage_mathjax(site)
    status = json.loads(STATUS.read_text()) if STATUS.exists() else {}
    (site / "chapters").mkdir()
    for p in paths:
        _stage_notebook(p, site / "chapters" / p.name, status.get(p.stem))
    from dnnbook.book.defaults import MissingEvidence

    try:
        pages.write_pages(site, paths, status, RESULTS)
    except MissingEvidence as exc:
        raise PipelineError(str(exc)) from None
    pages.restrict_toc(site / "_toc.yml", [c.name for c in selected])
    cmd = [sys.executable, "-m", "jupyter_book", "build", str(site), "-W", "--keep-going", "-q"]
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent))
    if jb:
        cmd = [jb, "build", str(site), "-W", "--keep-going", "-q"]
    print("building the HTML book with Jupyter Book", flush=True)
    if subprocess.call(cmd) != 0:
        raise PipelineError("jupyter-book build failed (warnings are errors; see above)")
    _drop_duplicate_thebe_config(site / "_build" / "html")
    _copy_mathjax(mathjax, site / "_build" / "html")
    _complete_index_redirect(site / "_build" / "html")
    shutil.move(site / "_build" / "html", HTML)
    return HTML / "index.html"


def _complete_index_redirect(html_root: Path) -> None:
    """Make Jupyter Book's ``index.html`` (a bare meta refresh to the root page) a complete page
    with the book's icon: without an icon link, a browser asks for ``/favicon.ico`` (a 404)
    before it follows the refresh."""
    index = html_root / "index.html"
    match = re.search(r'url=([^"\s]+)', index.read_text(encoding="utf-8"))
    if not match:
        return
    target = match.group(1)
    index.write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Refresh" content="0; url={target}">'
        '<link rel="icon" href="_static/favicon.svg"><title>dnnbook</title></head>\n'
        f'<body><p>The book starts at <a href="{target}">{target}</a>.</p></body></html>\n',
        encoding="utf-8",
    )


def _drop_duplicate_thebe_config(html_root: Path) -> None:
    """Remove the second copy of sphinx-thebe's inline ``const THEBE_JS_URL`` script.

    Jupyter Book 1 with sphinx-book-theme loads sphinx-thebe twice, so every page declares
    the same ``const`` twice and the browser logs a SyntaxError on each page load.
    """
    marker = "<script>const THEBE_JS_URL"
    for page in html_root.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        first = text.find(marker)
        if first < 0:
            continue
        second = text.find(marker, first + len(marker))
        if second >= 0:
            end = text.index("</script>", second) + len("</script>")
            page.write_text(text[:second] + text[end:], encoding="utf-8")
