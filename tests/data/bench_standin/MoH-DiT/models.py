"""Stand-in for MoH-DiT/models.py (test of scripts/bench-official.py): DiT_models with one tiny model."""
import torch
import torch.nn as nn


class TinyDiT(nn.Module):
    def __init__(self, input_size=32, num_classes=1000):
        super().__init__()
        self.y = nn.Embedding(num_classes + 1, 4)
        self.out = nn.Conv2d(4, 8, 1)

    def forward(self, x, t, y):  # [B, 4, S, S], [B], [B] -> [B, 8, S, S]
        return self.out(x + self.y(y)[:, :, None, None] + t[:, None, None, None].float() / 1000)


DiT_models = {"MoH-DiT-S/2-90": TinyDiT}
