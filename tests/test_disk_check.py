"""tools/disk_check.py: the room `make` asks for before it installs anything."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "disk_check.py"
_spec = importlib.util.spec_from_file_location("disk_check", SCRIPT)
dc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dc)


def test_shortfall_counts_what_is_installed_already():
    assert dc.shortfall(needed=9, free=5, present=0) == 4
    assert dc.shortfall(needed=9, free=5, present=4) == 0
    assert dc.shortfall(needed=9, free=20, present=0) == 0


def test_tree_bytes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"x" * 1000)
    (tmp_path / "g").write_bytes(b"y" * 24)
    assert dc.tree_bytes(tmp_path) == 1024
    assert dc.tree_bytes(tmp_path / "missing") == 0


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120
    )


def test_too_little_room_is_one_clear_error():
    out = run("1e9", "make test")  # a billion gigabytes: no disk has that
    assert out.returncode == 1
    assert "make test needs about" in out.stderr and "GB is free" in out.stderr
    assert "DISK_GB=0" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_enough_room_zero_and_bad_input():
    assert run("0.000001", "make book").returncode == 0
    assert run("0", "make book").returncode == 0
    bad = run("lots", "make book")
    assert bad.returncode == 2 and "'lots'" in bad.stderr
    assert run().returncode == 2
