"""The former home of the ONNX exporter, kept so that
``from glassnet.io.onnx_export import export_onnx`` keeps working; the
exporter is the package :mod:`glassnet.io.onnx`."""
from .onnx import MIN_OPSET, ExportResult, export_onnx

__all__ = ["export_onnx", "ExportResult", "MIN_OPSET"]
