"""A few random SIGKILLs of `glassnet train --checkpoint-every 1`, with and without validation (see kill_resume)."""
import pytest

from tests.data_required import require_fashion_mnist
from tests.fuzz.kill_resume import campaign


@pytest.mark.parametrize("val_size", [0, 100])
def test_random_sigkills_never_lose_the_run_and_resume_bitwise(tmp_path, val_size):
    require_fashion_mnist()
    report = campaign(tmp_path, kills=4, val_size=val_size, seed=val_size, log=None)
    assert report.failures == [] and report.lost_runs == 0
    assert report.bitwise_equal, report
    assert report.temporaries_left == []
