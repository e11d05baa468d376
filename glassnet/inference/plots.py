"""Pictures of a trained run, written as PNGs into ``RUN/plots/`` (what ``glassnet plot`` draws).

    make_plots("runs/small_cnn")                  # curves, confusion matrix, filters, activations
    make_plots("runs/small_cnn", "/tmp/plots", image_index=7)

* ``curves.png``: train/val loss and accuracy per epoch (from ``history.json``);
* ``confusion_matrix.png``: true vs predicted class on the test set, with counts;
* ``filters.png``: the first conv layer's filters, each min-max normalised to [0, 1] on its
  own -- in colour (RGB) when it takes 3 input channels, as the lecture shows AlexNet's
  96 11×11×3 filters; in gray otherwise;
* ``activations_<layer>.png``: every conv layer's output maps for one test
  image (captured with ``Module.register_forward_hook``).

Needs matplotlib: ``pip install glassnet[plot]``.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import UsageError


__all__ = ["conv_layers", "capture_activations", "make_plots"]


def conv_layers(model) -> list:
    """``(name, module)`` of every ``nn.Conv2d`` in ``model``, in definition order."""
    from ..nn import Conv2d

    return [(name or "conv", m) for name, m in model.named_modules() if isinstance(m, Conv2d)]


def capture_activations(model, x) -> dict:
    """Run ``model`` on the batch ``x`` (eval mode, no grad) and return ``{conv layer name: output array}``,
    captured by forward hooks that are removed afterwards."""
    from ..autograd import no_grad
    from ..backend import to_numpy
    from ..tensor import Tensor

    captured, handles = {}, []
    for name, module in conv_layers(model):
        def hook(mod, inputs, output, name=name):
            captured[name] = to_numpy(output.data).copy()
        handles.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(Tensor(np.asarray(x)))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return captured


def _file_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def make_plots(run_dir, out_dir=None, image_index: int = 0, which: str = "best", data_root=None,
               limit=None, batch_size=None, progress: bool = False, log=print) -> list[Path]:
    """Write the run's PNGs into ``out_dir`` (default ``run_dir/plots``); return the paths written.

    ``log`` gets a line per file written and per plot skipped; ``batch_size=None`` is
    :func:`~glassnet.inference.run_inputs.default_batch_size` of the run.
    """
    from .. import viz
    from ..io.run_dir import class_names, load_run, read_history
    from ..train.metrics import confusion_matrix
    from .evaluation import predict_probabilities
    from .run_inputs import default_batch_size, run_test_set

    viz.require_matplotlib()
    log = log or (lambda *a: None)
    run = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run / "plots"
    written = []

    def wrote(path):
        written.append(Path(path))
        log(f"wrote {path}")

    history = read_history(run)
    model, config = load_run(run, which=which, log=log)
    names = class_names(config)
    if history:
        wrote(viz.plot_curves(history, out / "curves.png", title=f"{run.name}: {config['model']}"))
    else:
        log(f"skipped curves.png: {run / 'history.json'} is missing or empty")

    if batch_size is None:
        batch_size = default_batch_size(config)
    test = run_test_set(config, data_root=data_root)
    n_test = len(test)
    if not -n_test <= image_index < n_test:
        raise UsageError(f"--image-index must be in -{n_test}..{n_test - 1} (the test set has {n_test} "
                         f"images), got {image_index}")
    subset = test if limit is None else run_test_set(config, data_root=data_root, limit=limit)
    probs, labels = predict_probabilities(model, subset, batch_size, progress, desc=f"plot {run.name}")
    cm = confusion_matrix(labels, probs.argmax(axis=1), probs.shape[1])
    wrote(viz.plot_confusion_matrix(cm, names, out / "confusion_matrix.png",
                                    title=f"{run.name}: test confusion matrix (accuracy "
                                          f"{np.trace(cm) / max(cm.sum(), 1):.4f}, {int(cm.sum())} images)"))

    convs = conv_layers(model)
    if convs:
        name, first = convs[0]
        weight = first.weight.data if hasattr(first.weight, "data") else first.weight
        wrote(viz.plot_filters(weight, out / "filters.png", title=f"{run.name}: {name}",
                               max_filters=96 if weight.shape[1] == 3 else 64))
    else:
        log(f"skipped filters.png and activations: model {config['model']!r} has no conv layer")

    if convs:
        index = image_index % n_test
        x, y = test[index]
        maps = capture_activations(model, np.asarray(x)[None])
        pred = f", predicted {names[int(np.argmax(probs[index]))]}" if index < len(probs) else ""
        for name, _ in convs:
            if name not in maps:
                log(f"skipped activations of {name}: it did not run in the forward pass")
                continue
            title = f"{name} on test image {index} ({names[int(y)]}{pred})"
            wrote(viz.plot_activations(maps[name], out / f"activations_{_file_part(name)}.png",
                                       title=title, image=np.asarray(x)))
    return written
