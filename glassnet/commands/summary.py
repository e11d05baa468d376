"""``glassnet summary``: the lecture's architecture table for a zoo model.

    glassnet summary vgg16 --input 3x224x224 --view lecture
    glassnet summary resnet18 --format md
"""
from __future__ import annotations

from ._args import check_int, check_model_name, input_size_type


def add_parser(sub) -> None:
    p = sub.add_parser("summary", help="print a model's layer table: shapes, memory, parameters, MACs, receptive fields")
    p.add_argument("model", help="zoo model name (see `glassnet models`)")
    p.add_argument("--input", default="3x224x224", type=input_size_type("3x224x224"), help="one image's shape, CxHxW (default 3x224x224)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--num-classes", type=int, default=None, help="output classes (default: the model's)")
    p.add_argument("--view", choices=["lecture", "leaves"], default="lecture",
                   help="lecture: activations folded into the layer before, input row first (default)")
    p.add_argument("--format", choices=["text", "md", "json"], default="text")
    p.set_defaults(handler=run)


def run(args) -> int:
    """``glassnet summary``: print the table; errors reach :func:`glassnet.cli.main` (one line)."""
    from ..analysis.summary import summary
    from ..models import get_model

    check_model_name(args.model, option=None)
    check_int("batch_size", args.batch_size, 1)
    check_int("num_classes", args.num_classes, 1, optional=True)
    size = args.input
    kwargs = {"in_channels": size[0]}
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    model = get_model(args.model, **kwargs)
    table = summary(model, size, batch_size=args.batch_size, view=args.view, name=args.model)
    if args.format == "json":
        print(table.to_json())
    elif args.format == "md":
        print(table.to_markdown(), end="")
    else:
        print(table)
    return 0
