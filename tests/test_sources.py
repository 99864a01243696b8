"""Chapter sources: output-free, with the template's badge, Colab install cell and parameters."""

import json
import re

import pytest
import yaml

from dnnbook.book import pipeline
from tests.conftest import ROOT

CHAPTERS = pipeline.chapters(ROOT)
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO = CONFIG["repository"]["url"].removeprefix("https://github.com/")


def _nb(chapter):
    return json.loads(chapter.path.read_text())


def test_there_are_chapters():
    assert [c.number for c in CHAPTERS][:1] == ["00"]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.name)
def test_source_is_output_free(chapter):
    for cell in _nb(chapter)["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, (
                f"{chapter.name}: commit sources without outputs (clear them before committing)"
            )


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.name)
def test_template_badge_install_parameters_setup(chapter):
    cells = _nb(chapter)["cells"]
    first = "".join(cells[0]["source"])
    assert first.startswith("# "), "first cell: the chapter title"
    urls = re.findall(r"\(https://colab\.research\.google\.com/github/([^)]+)\)", first)
    assert urls == [f"{REPO}/blob/main/chapters/{chapter.path.name}"], (
        "Colab badge must open this file"
    )
    install = "".join(cells[1]["source"])
    assert (
        '"google.colab" in sys.modules' in install
        and "pip" in install
        and f"github.com/{REPO}" in install
    )
    assert "==" not in install, "Colab install uses version ranges, never exact pins"
    assert "remove-cell" in cells[1].get("metadata", {}).get("tags", []), (
        "the install cell is hidden"
    )
    assert "](https://colab.research.google.com/assets/colab-badge.svg)" in first, (
        "absolute badge image"
    )
    for cell in cells:
        assert "NBVAL_CHECK_OUTPUT" not in "".join(cell["source"]), "use the nbval-check-output tag"
    params = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1
    source = "".join(params[0]["source"]).strip()
    assert re.fullmatch(r'(#[^\n]*\n)*PROFILE = "quick"[^\n]*\nSEED = 42', source)
    assert "on a 2-core CPU" in source and "GPU" in source, (
        "the parameters cell says how long it takes"
    )
    setup = "".join(cells[cells.index(params[0]) + 1]["source"])
    assert "dnnbook.profiles.get(PROFILE)" in setup and "dnnbook.runtime.setup(SEED" in setup


def test_toc_lists_every_chapter():
    toc = (ROOT / "_toc.yml").read_text()
    for chapter in CHAPTERS:
        assert f"chapters/{chapter.name}" in toc


def test_gpu_script_parses_and_names_a_missing_bundle(tmp_path):
    import subprocess

    script = ROOT / "benchmarks" / "gpu_full.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    r = subprocess.run(
        ["bash", str(script), "00"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "BUNDLE": str(tmp_path / "none")},
    )
    assert r.returncode == 2 and "gpu_full.sh --prepare" in r.stderr and "none/wheels" in r.stderr


# names a chapter may write as `name.attr` without importing them in its code
_EXTERNAL = {
    "keras",
    "np",
    "numpy",
    "pd",
    "pandas",
    "tf",
    "jax",
    "torch",
    "plt",
    "matplotlib",
    "scipy",
    "sklearn",
    "math",
    "ops",
    "layers",
    "os",
    "sys",
    "e",
    "i",
    "x",
}


def _bound_names(code: str) -> set[str]:
    """Names the chapter's code binds: imports, assignments, defs, classes, loop targets."""
    import ast

    names: set[str] = set()
    for cell_code in code.split("\n#%%\n"):
        try:
            tree = ast.parse(cell_code)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
                names |= {a.arg for a in node.args.args} if hasattr(node, "args") else set()
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return names


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.name)
def test_prose_names_only_modules_and_functions_that_exist(chapter):
    """A chapter's prose that names `dnnbook.module`, `module.function` of dnnbook or any
    other `name.attr` must name something that exists: a module it imports, or a name its
    code binds (no `transfer.upscale_input` for a module that is not there)."""
    import importlib

    cells = _nb(chapter)["cells"]
    code = "\n#%%\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    prose = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    bound = _bound_names(code)
    wrong = []
    for ref in re.findall(r"`([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)", prose):
        head, *rest = ref.split(".")
        if head == "dnnbook":
            head, rest = rest[0], rest[1:]
        elif head in _EXTERNAL or (head in bound and not _is_dnnbook_module(head)):
            continue  # another library, or a variable of the chapter (e.g. `model.fit`)
        if not _is_dnnbook_module(head):
            wrong.append(ref)
            continue
        obj = importlib.import_module(f"dnnbook.{head}")
        for attr in rest:
            if not hasattr(obj, attr):
                wrong.append(ref)
                break
            obj = getattr(obj, attr)
    assert not wrong, f"{chapter.name} names what does not exist: {', '.join(sorted(set(wrong)))}"


def _is_dnnbook_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(f"dnnbook.{name}") is not None


def _package_imports() -> dict[str, set[str]]:
    """Per module of dnnbook (dotted name), the dnnbook modules it imports at module level."""
    import ast

    graph = {}
    for path in sorted((ROOT / "dnnbook").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found = set()
        for node in ast.parse(path.read_text()).body:  # module level only: not in a function
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dnnbook"):
                found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("dnnbook")}
        graph[name] = found
    return {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """An import cycle of ``graph`` (module -> the modules it imports), or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        if m in path:
            return path[path.index(m) :] + [m]
        if m in done:
            return None
        path.append(m)
        for dep in sorted(graph.get(m, ())):
            if not m.startswith(dep + "."):  # a package's own __init__ is imported first
                if found := visit(dep):
                    return found
        path.pop()
        done.add(m)
        return None

    return next((c for m in graph if (c := visit(m))), None)


def test_package_modules_are_small_and_import_no_cycle():
    big = {
        p.name: n
        for p in (ROOT / "dnnbook").glob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert not big, f"modules over 400 lines: {big}"
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"p.x": {"p"}, "p": {"q"}}) is None
    graph = _package_imports()
    assert sum(map(len, graph.values())) > 20  # the graph was read
    assert _cycle(graph) is None, "import cycle: " + " -> ".join(_cycle(graph))
