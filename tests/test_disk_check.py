"""tools/disk_check.py: the room `make` asks for before it installs anything."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

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


def test_too_little_room_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(dc, "ROOT", tmp_path)  # nothing installed there
    assert dc.main(["1e9", "make test"]) == 1  # a billion gigabytes: no disk has that
    err = capsys.readouterr().err
    assert "make test needs about" in err and "GB is free" in err and "0.0 GB of it" in err
    assert "DISK_GB=0" in err and len(err.strip().splitlines()) == 1


def test_what_is_installed_counts_towards_the_room(tmp_path, monkeypatch):
    monkeypatch.setattr(dc, "ROOT", tmp_path)
    monkeypatch.setattr(dc.shutil, "disk_usage", lambda path: SimpleNamespace(free=5e9))
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "lib").write_bytes(b"x" * 2_000_000)  # 0.002 GB installed
    assert dc.main(["5", "make test"]) == 0
    assert dc.main(["5.001", "make test"]) == 0
    assert dc.main(["5.01", "make test"]) == 1


def test_enough_room_zero_and_bad_input():
    assert run("0.000001", "make book").returncode == 0
    assert run("0", "make book").returncode == 0  # 0 skips the check
    bad = run("lots", "make book")
    assert bad.returncode == 2 and "'lots'" in bad.stderr
    assert run().returncode == 2
