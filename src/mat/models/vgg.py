"""VGG16 for CIFAR-10 (Simonyan & Zisserman 2015, the usual 32x32 variant), Kaiming-initialised.

Thirteen 3x3 conv layers (padding 1) each followed by BatchNorm and ReLU, five 2x2 max-pools, and a
single Linear(512, classes) classifier: 14,728,266 parameters and 4,224 filters at full width.
(torchvision's `vgg16` is the ImageNet variant with a 4096-wide classifier; not this one.)

`width` scales every channel count (rounded, at least 1) so the tiny profile stays cheap; the code
path is the same at every width.
"""

from __future__ import annotations

import torch
from torch import nn

from mat.models.config import resolve
from mat.ntk_stages import Stage

# "M" = 2x2 max-pool.
VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]

SIZES = {
    "micro": {"width": 0.0625},
    "tiny": {"width": 0.125},
    "paper": {"width": 1.0},
}

DEFAULTS = {"width": 1.0, "classes": 10, "in_channels": 3}


class ConvBlock(nn.Module):
    """conv 3x3 (pad 1) + BatchNorm + ReLU, then an optional 2x2 max-pool. One "layer" of VGG."""

    def __init__(self, cin: int, cout: int, pool: bool):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(cout)
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.bn(self.conv(x))))


class VGG(nn.Module):
    """VGG for 32x32 images. `x`: float [B, C, 32, 32]; returns logits [B, classes]."""

    def __init__(self, cfg: list, width: float = 1.0, classes: int = 10, in_channels: int = 3):
        super().__init__()
        blocks, cin = [], in_channels
        for i, v in enumerate(cfg):
            if v == "M":
                continue
            cout = max(1, round(v * width))
            blocks.append(ConvBlock(cin, cout, pool=i + 1 < len(cfg) and cfg[i + 1] == "M"))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.classifier = nn.Linear(cin, classes)
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        """Kaiming (He et al. 2015) normal init for convs (fan_out, ReLU), BatchNorm at identity,
        classifier N(0, 0.01) with zero bias (torchvision's VGG convention)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"vgg: expected images [B, C, H, W], got shape {tuple(x.shape)}")
        for block in self.blocks:
            x = block(x)
        return self.classifier(x.flatten(1))  # 32x32 input -> 1x1 after five pools

    def aux_loss(self) -> torch.Tensor:
        """VGG has no auxiliary loss."""
        return torch.zeros((), device=self.classifier.weight.device)

    def layer_prefixes(self) -> list[str]:
        """The conv blocks (conv + BatchNorm): the "layers" of the layer-wise mNTK."""
        return [f"blocks.{i}" for i in range(len(self.blocks))]

    def ntk_stages(self) -> list[Stage]:
        """The layer chain for segmented mNTK passes (`mat.ntk_stages`): each conv block, then the
        classifier; together exactly `forward`."""
        stages = [Stage((p,), lambda h, ctx, b=b: b(h)) for p, b in zip(self.layer_prefixes(), self.blocks)]
        return [*stages, Stage(("classifier",), lambda h, ctx: self.classifier(h.flatten(1)))]

    def filter_layout(self) -> list[dict]:
        """Per conv layer, the parameters whose index along dim 0 is the output channel (filter)."""
        return [
            {
                "params": [f"{p}.conv.weight", f"{p}.conv.bias", f"{p}.bn.weight", f"{p}.bn.bias"],
                "filters": b.conv.out_channels,
            }
            for p, b in zip(self.layer_prefixes(), self.blocks)
        ]


def build_vgg16(cfg: dict) -> VGG:
    """VGG16-CIFAR from a model config: `size` (micro, tiny, paper) and/or explicit width, classes,
    in_channels."""
    c = resolve(cfg, "vgg16", SIZES, DEFAULTS)
    if not c["width"] > 0:
        raise ValueError(f"model config (vgg16): width must be > 0, got {c['width']}")
    return VGG(VGG16_CFG, width=c["width"], classes=c["classes"], in_channels=c["in_channels"])


from mat.models.registry import register_model  # noqa: E402  (registration, see mat/models/registry.py)

register_model("vgg16", build_vgg16, label="VGG16", inputs="image")
