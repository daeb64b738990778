"""Stand-in for MoH-ViT/transnext.py (test of scripts/bench-official.py): the four builder names, a tiny model."""
import torch
import torch.nn as nn


class Tiny(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.head = nn.Linear(3, num_classes)

    def forward(self, x):  # [B, 3, H, W] -> [B, num_classes]
        return self.head(x.mean((2, 3)))


def _build(img_size=224, pretrain_size=None, **kwargs):
    assert img_size == 224
    return Tiny()


moh_transnext_small_75 = moh_transnext_small_80 = moh_transnext_base_50 = moh_transnext_base_75 = _build
