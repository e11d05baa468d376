"""``glassnet export``: write a trained run's model (or a fresh zoo model) as ONNX.

    glassnet export runs/mlp --onnx mlp.onnx
    glassnet export --model small_cnn --onnx small_cnn.onnx --input 1x28x28

A run folder holds ``config.json`` (``model``, ``model_kwargs``,
``num_classes``, ``in_channels``, ``image_size``) and its weights in
``checkpoints/best.safetensors`` (else ``checkpoints/last.safetensors``, else
``model.npz`` for older runs). Needs ``pip install glassnet[onnx]``.
"""
from __future__ import annotations

import json
from pathlib import Path

WEIGHT_FILES = ("checkpoints/best.safetensors", "checkpoints/last.safetensors", "model.npz")


def _input_size(text: str) -> tuple:
    try:
        dims = tuple(int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise SystemExit(f"glassnet export: --input must look like 1x28x28 (C x H x W), got {text!r}")
    return dims


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a run's model (or a fresh zoo model) to ONNX")
    p.add_argument("run", nargs="?", default=None,
                   help="run folder (config.json + checkpoints/best|last.safetensors or model.npz)")
    p.add_argument("--model", default=None, help="export a freshly initialised zoo model instead of a run")
    p.add_argument("--onnx", required=True, metavar="PATH", help="the .onnx file to write")
    p.add_argument("--input", default=None,
                   help="one input's shape, CxHxW (default: the run's in_channels x image_size, else 1x28x28)")
    p.add_argument("--num-classes", type=int, default=None, help="with --model: output classes")
    p.add_argument("--batch-size", type=int, default=1, help="probe batch size (the fixed one with --static-batch)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--static-batch", action="store_true", help="fix the batch axis instead of making it dynamic")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run)


def _image_hw(value):
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value), int(value)
    value = [int(v) for v in value]
    return (value[0], value[0]) if len(value) == 1 else tuple(value[-2:])


def _strip_model_prefix(state):
    if any(k.startswith("model.") for k in state):
        return {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    return dict(state)


def load_run(folder):
    """``(model, input_size, weights_path)`` for a run folder; the model carries the run's weights."""
    from ..io import load_state_dict_file
    from ..models import get_model

    folder = Path(folder)
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise SystemExit(f"glassnet export: {folder} is not a run folder (no config.json)")
    config = json.loads(cfg_path.read_text())
    if "model" not in config:
        raise SystemExit(f"glassnet export: {cfg_path} has no \"model\" entry")
    kwargs = dict(config.get("model_kwargs") or {})
    for key in ("num_classes", "in_channels"):
        if config.get(key) is not None:
            kwargs.setdefault(key, int(config[key]))
    kwargs.setdefault("in_channels", 1)  # `glassnet train` builds its models with one input channel
    weights = next((folder / f for f in WEIGHT_FILES if (folder / f).is_file()), None)
    if weights is None:
        raise SystemExit(f"glassnet export: no weights in {folder} (looked for {', '.join(WEIGHT_FILES)})")
    model = get_model(config["model"], **kwargs)
    model.load_state_dict(_strip_model_prefix(load_state_dict_file(weights)))
    hw = _image_hw(config.get("image_size")) or (28, 28)
    return model, (int(kwargs["in_channels"]),) + tuple(hw), weights


def run(args) -> int:
    from ..io.onnx_export import export_onnx
    from ..models import get_model

    if (args.run is None) == (args.model is None):
        raise SystemExit("glassnet export: give either a run folder or --model NAME (not both)")
    if args.run is not None:
        model, size, source = load_run(args.run)
        name = f"{args.run} ({source.name})"
    else:
        size = _input_size(args.input or "1x28x28")
        kwargs = {"in_channels": size[0]}
        if args.num_classes is not None:
            kwargs["num_classes"] = args.num_classes
        model = get_model(args.model, **kwargs)
        name = f"{args.model} (fresh weights)"
    if args.input is not None:
        size = _input_size(args.input)
    result = export_onnx(model, args.onnx, input_size=size, batch_size=args.batch_size, opset=args.opset,
                         dynamic_batch=not args.static_batch, progress=not args.no_progress)
    print(f"glassnet export: {name} -> {result.path}")
    print(f"  input {result.input_shape}, output {result.output_shape}, "
          f"{result.num_nodes} nodes, {result.num_parameters:,} weights, "
          f"{result.file_size:,} bytes ({result.file_size / 2**20:.1f} MiB), opset {result.opset}")
    return 0
