"""``glassnet.analysis``: gradient checking, conv arithmetic, model summaries."""
from .conv_arith import conv_output_size
from .gradcheck import GradcheckError, GradcheckResult, gradcheck

__all__ = ["conv_output_size", "gradcheck", "GradcheckResult", "GradcheckError"]
