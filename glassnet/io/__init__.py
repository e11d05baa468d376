"""Weights files: load and save state dicts (``.safetensors``, ``.npz``) and
read PyTorch ``torch.save`` files (``.pth``/``.pt``/``.bin``) without PyTorch.

    from glassnet.io import load_state_dict_file, save_state_dict_file
    model.load_state_dict(load_state_dict_file("resnet18.pth"))
    save_state_dict_file(model.state_dict(), "model.safetensors")
"""
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .pth import StateDictFileError, UnsafePickleError, load_pth
from .state_dict_file import load_state_dict_file, save_state_dict_file
from .run_dir import RunDirError, class_names, load_run, preprocess_transform  # noqa: E402

__all__ = [
    "load_state_dict_file", "save_state_dict_file", "load_pth",
    "StateDictFileError", "UnsafePickleError",
]
__all__ += ["save_checkpoint", "load_checkpoint", "CheckpointError"]
