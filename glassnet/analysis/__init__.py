"""``glassnet.analysis``: gradient checking, conv arithmetic, model summaries."""
from .gradcheck import GradcheckError, GradcheckResult, gradcheck

__all__ = ["gradcheck", "GradcheckResult", "GradcheckError"]
