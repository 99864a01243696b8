"""The pure logic of tools/colab_check.py (the check itself is `make colab-check`)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("colab_check", ROOT / "tools" / "colab_check.py")
cc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cc)

FREEZE = """\
# comment
absl-py==1.4.0
Jupyter_Client==7.4.9
keras==3.13.2
numpy==2.1.3
torch @ https://download.pytorch.org/whl/cpu/torch-2.11.0%2Bcpu-cp313-cp313-manylinux_2_28_x86_64.whl
google-colab @ file:///colabtools/dist/google_colab-1.0.0.tar.gz
-e git+https://example.org/x.git#egg=x
"""


def _report(*packages: tuple[str, str]) -> dict:
    return {"install": [{"metadata": {"name": n, "version": v}} for n, v in packages]}


def test_parse_freeze_normalizes_names_and_reads_wheel_versions():
    freeze = cc.parse_freeze(FREEZE)
    assert freeze["jupyter-client"] == "7.4.9"
    assert freeze["torch"] == "2.11.0+cpu"
    assert freeze["google-colab"] is None  # present, version unknown
    assert "x" not in freeze and "# comment" not in freeze
    assert cc.constraints(freeze).splitlines()[:2] == ["absl-py==1.4.0", "jupyter-client==7.4.9"]
    assert "google-colab" not in cc.constraints(freeze)


def test_classify_separates_changes_from_additions():
    freeze = cc.parse_freeze(FREEZE)
    installed = {"numpy": "2.1.3", "keras": "3.13.2", "rich": "13.9.4"}
    report = _report(
        ("dnnbook", "0.1.0"),
        ("mnist1d", "0.0.2.post1"),
        ("numpy", "2.3.0"),
        ("Jupyter-Client", "8.0.0"),
        ("rich", "14.0.0"),
    )
    changed, added = cc.classify(report, installed, freeze)
    assert changed == [
        "jupyter-client 7.4.9 -> 8.0.0",
        "numpy 2.1.3 -> 2.3.0",
        "rich 13.9.4 -> 14.0.0",
    ]
    assert added == ["mnist1d 0.0.2.post1"]
    assert cc.classify(_report(("dnnbook", "0.1.0")), installed, freeze) == ([], [])
    assert cc.summary([], ["mnist1d 0.0.2.post1"]) == "changed: 0, added: ['mnist1d 0.0.2.post1']"


def test_snapshot_pins_take_the_snapshot_version_of_what_colab_ships():
    freeze = cc.parse_freeze(FREEZE)
    report = _report(
        ("dnnbook", "0.1.0"), ("keras", "3.13.2"), ("mnist1d", "0.0.2"), ("absl_py", "1.4.0")
    )
    assert cc.snapshot_pins(report, freeze) == ["absl-py==1.4.0", "keras==3.13.2"]


def test_install_args_come_from_the_chapter_cell_with_the_local_checkout():
    notebook = json.loads(
        (ROOT / "chapters" / cc.INSTALL_CELL_NOTEBOOK).read_text(encoding="utf-8")
    )
    args = cc.install_args(cc.install_cell(notebook), "/env/bin/python", "file:///src")
    assert args[:4] == ["/env/bin/python", "-m", "pip", "install"]
    assert args[-1] == "dnnbook @ file:///src"
    assert not any("git+" in a for a in args)


def test_install_args_reject_a_cell_without_pip_install():
    with pytest.raises(cc.CheckError):
        cc.install_args("print('hello')", "py", "file:///src")


def test_inject_parameters_adds_a_cell_after_the_parameters_cell():
    nb = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "source": "import sys", "outputs": []},
            {
                "cell_type": "code",
                "metadata": {"tags": ["parameters"]},
                "source": 'PROFILE = "full"',
            },
            {"cell_type": "code", "metadata": {}, "source": "x = 1"},
        ]
    }
    out = cc.inject_parameters(nb, {"PROFILE": "quick", "SEED": 7})
    assert [c["source"] for c in out["cells"]][1:] == [
        'PROFILE = "full"',
        "# Parameters\nPROFILE = 'quick'\nSEED = 7\n",
        "x = 1",
    ]
    assert len(nb["cells"]) == 3  # the source notebook is untouched
    with pytest.raises(cc.CheckError):
        cc.inject_parameters({"cells": nb["cells"][:1]}, {"PROFILE": "quick"})


def test_claim_records_and_environment_line_are_read_from_outputs():
    rec = {"statement": "s", "status": cc.CLAIM_HOLDS}
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "outputs": [
                    {
                        "output_type": "stream",
                        "name": "stdout",
                        "text": ["backend tensorflow 2.20.0 | keras 3.13.2\n"],
                    }
                ],
            },
            {
                "cell_type": "code",
                "outputs": [
                    {"output_type": "display_data", "data": {cc.CLAIM_MIME: rec}},
                    {"output_type": "display_data", "data": {"text/plain": "x"}},
                ],
            },
            {"cell_type": "markdown", "source": "no outputs"},
        ]
    }
    assert cc.claim_records(nb) == [rec]
    assert cc.environment_line(nb) == "backend tensorflow 2.20.0 | keras 3.13.2"


def test_claim_mime_matches_dnnbook():
    from dnnbook import claims

    assert cc.CLAIM_MIME == claims.MIME and cc.CLAIM_HOLDS == claims.PASS


def test_select_by_number_name_or_topic():
    names = ["00_baseline.ipynb", "01_gradients.ipynb", "03_optimizers.ipynb"]
    assert cc.select(names, "") == names
    assert cc.select(names, "01,00") == ["01_gradients.ipynb", "00_baseline.ipynb"]
    assert cc.select(names, "optimizers") == ["03_optimizers.ipynb"]
    with pytest.raises(cc.CheckError, match="no chapter '07'"):
        cc.select(names, "07")


def test_env_key_changes_with_any_input():
    assert cc.env_key("a", b"b") == cc.env_key("a", b"b")
    assert cc.env_key("a", b"b") != cc.env_key("a", b"c")


def test_op_census_cells_wrap_the_chapter_and_are_read_back():
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": []}]}
    out = cc.add_census(nb)
    assert [c["metadata"].get("tags") for c in out["cells"]] == [
        ["op-census"],
        None,
        ["op-census-report"],
    ]
    assert (
        "add_op_callback" in out["cells"][0]["source"]
        and cc.CENSUS_MARK in out["cells"][-1]["source"]
    )
    printed = {
        "output_type": "stream",
        "name": "stdout",
        "text": cc.CENSUS_MARK + '["BiasAdd", "MatMul"]\n',
    }
    out["cells"][-1]["outputs"] = [printed]
    assert cc.census(out) == ["BiasAdd", "MatMul"]
    assert cc.census(nb) == []


def test_ops_without_a_deterministic_gpu_kernel_are_picked_out():
    assert cc.without_deterministic_kernel(["MatMul", "Bincount", "ResizeBilinearGrad"]) == [
        "Bincount"
    ]
    assert cc.without_deterministic_kernel(["MatMul", "BiasAddGrad"]) == []


def test_a_second_check_waits_for_the_environment_another_process_builds(
    tmp_path, monkeypatch, capsys
):
    """`make test` builds the environment in the background (--prepare): the check at its end
    waits for that build instead of building a second copy beside it."""
    monkeypatch.setattr(cc, "WORK", tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX);"
            " print('held', flush=True); time.sleep(1.5)",
            str(tmp_path / ".lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    start = time.perf_counter()
    with cc.env_lock():
        waited = time.perf_counter() - start
    holder.wait()
    assert waited > 0.5, "the lock was taken while another process held it"
    assert "waiting for the environment that another process is building" in capsys.readouterr().out
    with cc.env_lock():  # free again: taken at once, nothing said
        pass
    assert "waiting" not in capsys.readouterr().out
