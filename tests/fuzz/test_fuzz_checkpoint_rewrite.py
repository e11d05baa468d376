"""Fuzz load_checkpoint (all-or-nothing) on checkpoints edited and re-written with a valid hash: any
input bytes give a correct load or a GlassnetError, within the memory cap and time limits (target
"checkpoint_rewrite" in tests/fuzz/targets.py; tests/fuzz/README.md has the big-campaign commands)."""
from tests.fuzz.runner import assert_clean


def test_fuzz_checkpoint_rewrite(tmp_path):
    assert_clean("checkpoint_rewrite", tmp_path)
