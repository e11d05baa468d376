"""examples/two_layer_lecture.py: the lecture's loop trains, and its hand gradients are autograd's."""
import importlib.util
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location(
    "two_layer_lecture", Path(__file__).resolve().parents[1] / "examples" / "two_layer_lecture.py"
)
lecture = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lecture)


def test_the_lecture_sizes():
    x, y, w1, w2 = lecture.lecture_data(seed=0)
    assert (x.shape, y.shape, w1.shape, w2.shape) == ((64, 1000), (64, 10), (1000, 100), (100, 10))
    assert x.dtype == np.float64 and lecture.LEARNING_RATE == 1e-4


def test_hand_gradients_equal_autograd_and_central_differences():
    for seed in (0, 1):
        x, y, w1, w2 = lecture.lecture_data(seed)
        w1 = w1 * 0.05  # also a point where the sigmoid is not saturated
        loss, g1, g2 = lecture.hand_gradients(x, y, w1, w2)
        ref_loss, r1, r2 = lecture.autograd_gradients(x, y, w1, w2)
        assert abs(loss - ref_loss) <= 1e-12 * abs(ref_loss)
        for g, r in ((g1, r1), (g2, r2)):
            assert g.dtype == r.dtype == np.float64
            assert np.max(np.abs(g - r)) <= 1e-10 * np.max(np.abs(r))
        # a few elements against central differences: the derivation, not only agreement
        rng = np.random.default_rng(seed)
        for w, g in ((w1, g1), (w2, g2)):
            for _ in range(3):
                i = tuple(rng.integers(0, n) for n in w.shape)
                old, eps = w[i], 1e-5
                w[i] = old + eps
                plus = lecture.hand_gradients(x, y, w1, w2)[0]
                w[i] = old - eps
                minus = lecture.hand_gradients(x, y, w1, w2)[0]
                w[i] = old
                assert abs((plus - minus) / (2 * eps) - g[i]) <= 1e-5 * max(1.0, abs(g[i]))


def test_the_loop_reduces_the_loss_and_both_loops_agree():
    hand = lecture.train_numpy(steps=200, seed=0)
    auto = lecture.train_glassnet(steps=200, seed=0)
    assert hand[-1] < 0.05 * hand[0]
    assert all(b <= a * (1 + 1e-9) for a, b in zip(hand[100:], hand[101:]))  # steadily, once past the start
    np.testing.assert_allclose(auto, hand, rtol=1e-9)


def test_main_prints_the_loss(capsys):
    lecture._train(lecture.hand_gradients, steps=3, seed=0, log_every=1)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["0", "1", "2"]
    assert float(lines[2].split()[1]) < float(lines[0].split()[1])
