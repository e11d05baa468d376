"""Fuzz glassnet.io.load_run on fuzzed run folders: any input bytes give a correct load or a
GlassnetError, within the memory cap and time limits (target "run_load" in tests/fuzz/targets.py;
tests/fuzz/README.md has the big-campaign commands)."""
from tests.fuzz.runner import assert_clean


def test_fuzz_run_load(tmp_path):
    assert_clean("run_load", tmp_path)
