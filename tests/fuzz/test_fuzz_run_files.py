"""Fuzz glassnet.io.run_dir.read_config / read_history: any input bytes give a correct load or a
GlassnetError, within the memory cap and time limits (target "run_files" in tests/fuzz/targets.py;
tests/fuzz/README.md has the big-campaign commands)."""
from tests.fuzz.runner import assert_clean


def test_fuzz_run_files(tmp_path):
    assert_clean("run_files", tmp_path)
