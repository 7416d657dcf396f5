"""Partial backward: weight gradients of frozen heads, filters and experts are not computed.

`install_partial_backward(model, partition)` -> `PartialBackward` with `set_active(mask)`,
`activated(mask)`, `disabled()`, `summary()` and `remove()`. The math lives in `functions.py`
(custom autograd functions), the wiring to a model and its partition in `install.py`.
"""

from mat.backward.functions import PartialConv2d, PartialLinear
from mat.backward.install import PartialBackward, install_partial_backward

__all__ = ["PartialBackward", "PartialConv2d", "PartialLinear", "install_partial_backward"]
