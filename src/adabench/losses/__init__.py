"""Loss heads, one class per paper (``conf/loss/<name>.yaml`` names the class by ``_target_``)."""

from adabench.losses.adacos import AdaCosHead, adacos_fixed_scale
from adabench.losses.base import ClassificationHead, CosineHead
from adabench.losses.margins import ArcFaceHead, CosFaceHead, SphereFaceHead
from adabench.losses.ntxent import NTXentHead, nt_xent
from adabench.losses.pml import PMLHead
from adabench.losses.softmax import L2SoftmaxHead, SoftmaxHead

__all__ = [
    "AdaCosHead",
    "ArcFaceHead",
    "ClassificationHead",
    "CosFaceHead",
    "CosineHead",
    "L2SoftmaxHead",
    "NTXentHead",
    "PMLHead",
    "SoftmaxHead",
    "SphereFaceHead",
    "adacos_fixed_scale",
    "nt_xent",
]
