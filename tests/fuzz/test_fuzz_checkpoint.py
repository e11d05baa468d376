"""Fuzz read_checkpoint_info and load_checkpoint on byte-mutated checkpoint files: any input bytes give
a correct load or a GlassnetError, within the memory cap and time limits (target "checkpoint" in
tests/fuzz/targets.py; tests/fuzz/README.md has the big-campaign commands)."""
from tests.fuzz.runner import assert_clean


def test_fuzz_checkpoint(tmp_path):
    assert_clean("checkpoint", tmp_path)
