"""benchmarks/bench_data.py runs end to end at its smallest settings (``--quick``: 32 photos made in a
temporary folder, one round) and prints the rows it promises. Nothing about speed is asserted.

The glassnet side always runs (~20 s on 2 busy cores); the torchvision side only where a Python with
torchvision is found ($GLASSNET_TORCHVISION_PYTHON, or /work/tvenv/bin/python as in DEVELOPERS.md), with
fewer contenders to stay short.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PIL")

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "bench_data.py"
TV_PYTHON = os.environ.get("GLASSNET_TORCHVISION_PYTHON", "/work/tvenv/bin/python")


def _run(tmp_path, *args, timeout=300):
    out = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--work", str(tmp_path / "work"), *args,
                           "--json", str(out)], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout, json.loads(out.read_text())["results"]


def _row(stdout, *cells):
    """The table line that starts with these cells (separated by runs of spaces)."""
    pattern = r"^" + r"\s+".join(re.escape(str(c)) for c in cells) + r"\s"
    lines = [ln for ln in stdout.splitlines() if re.match(pattern, ln)]
    assert lines, f"no row {cells} in:\n{stdout}"
    return lines[0].split()


def test_quick_glassnet_side(tmp_path):
    stdout, res = _run(tmp_path, "--no-torchvision")
    assert "32 JPEGs 500x375 q90 in 4 classes" in stdout
    assert "prepare_image_cache(size=256) took" in stdout
    assert "sanity check: every process's warm-up epoch delivered all 32 images" in stdout
    for contender in ("folder-pil", "folder-simplejpeg", "cache"):
        for w in (0, 1, 2):
            row = _row(stdout, contender, w)
            assert float(row[2]) > 0 and row[3] == "-"  # glassnet images/s; no torchvision column
            assert float(res["summary"][f"{contender}/{w}"]["glassnet"]) > 0
    assert "decoded-image cache vs the folder" in stdout
    for w in (0, 1, 2):
        assert float(_row(stdout, w)[3]) > 0  # cache/folder ratio
    for stage in ("decode (Pillow)", "decode (simplejpeg)", "RandomResizedCrop(224)", "Normalize",
                  "collate (stack a batch)", "cache: copy a 256x256 row"):
        assert stage in stdout
    assert float(_row(stdout, "from", "the", "folder", "(simplejpeg),", "2", "workers")[8]) > 0
    assert float(_row(stdout, "one", "fixed", "batch,", "no", "loader")[7]) > 0
    assert res["train"]["images_per_s"] > 0 and all(map(lambda v: v == v, res["train"]["losses"]))
    # the folder and the cache are kept in --work and reused by the next run
    again, _ = _run(tmp_path, "--no-torchvision", "--no-train", "--workers", "0", "--contenders", "cache")
    assert "(reused)" in again and "took" not in again.split("pixels check")[0]


@pytest.mark.skipif(not os.path.exists(TV_PYTHON), reason=f"no torchvision interpreter at {TV_PYTHON}")
def test_quick_against_torchvision(tmp_path):
    stdout, res = _run(tmp_path, "--torchvision-python", TV_PYTHON, "--workers", "0", "1",
                       "--contenders", "folder-simplejpeg", "torchvision", "--no-train")
    assert "equals torchvision's pil_loader bit for bit" in stdout
    assert "torch.set_num_threads(1)" in stdout
    for w in (0, 1):
        row = _row(stdout, "folder-simplejpeg", w)
        assert float(row[3]) > 0 and float(row[4]) > 0  # torchvision images/s, ratio
        assert res["summary"][f"folder-simplejpeg/{w}"]["torchvision"] > 0
    assert "decode (PIL pil_loader)" in stdout
