"""ONNX export: ``export_onnx(model, path, input_size=...)`` (see :mod:`.export`)."""
from .export import MIN_OPSET, ExportResult, export_onnx

__all__ = ["export_onnx", "ExportResult", "MIN_OPSET"]
