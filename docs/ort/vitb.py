"""The plain ViT-B encoder that docs/speed-ort.sh times in ONNX Runtime and PyTorch, and its FLOP count.

The model is the VideoMAE expert's encoder without its patch embedding and head: 12 pre-norm blocks
(LayerNorm, multi-head self-attention, LayerNorm, GELU MLP), D=768, 12 heads, MLP 3072, then a final LayerNorm.
Its input is already-embedded tokens x[B, T, 768]; B and T are free (1×1568 is the VideoMAE expert's shape,
8×197 the CLIP expert's: eight frames of 196 patches and a class token). The weights are random (normal, std
0.02, seeded): the speed of a dense model does not depend on their values.
"""

import math

import torch
from torch import nn

DIM, HEADS, MLP, DEPTH = 768, 12, 3072, 12


def vitb_macs(batch: int, tokens: int) -> int:
    """Multiply-accumulates of one forward pass: the matmuls only (linear layers and the two attention products).

    Per block and sequence of T tokens: qkv 3·T·D², proj T·D², MLP 2·T·D·M, Q·Kᵀ T²·D, A·V T²·D. LayerNorm,
    softmax, GELU and the residual adds are not counted (under 1 % of the work). FLOPs are 2 × this, as
    `cast bench` counts them (cast.Config.MACs counts the same terms for the CAST model).
    """
    t, d = tokens, DIM
    per_block = 3 * t * d * d + t * d * d + 2 * t * d * MLP + 2 * t * t * d
    return batch * DEPTH * per_block


class Attention(nn.Module):
    """Multi-head self-attention: x[B,T,D] → [B,T,D]."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.proj = nn.Linear(DIM, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, HEADS, DIM // HEADS).permute(2, 0, 3, 1, 4)  # [3,B,H,T,Dh]
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = torch.softmax((q * (DIM // HEADS) ** -0.5) @ k.transpose(-2, -1), dim=-1)  # [B,H,T,T]
        return self.proj((a @ v).transpose(1, 2).reshape(b, t, DIM))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(DIM, eps=1e-6)
        self.attn = Attention()
        self.norm2 = nn.LayerNorm(DIM, eps=1e-6)
        self.fc1 = nn.Linear(DIM, MLP)
        self.fc2 = nn.Linear(MLP, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(nn.functional.gelu(self.fc1(self.norm2(x))))


class ViTB(nn.Module):
    """12 blocks and a final LayerNorm: tokens[B,T,768] → [B,T,768]."""

    def __init__(self, seed: int = 1) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block() for _ in range(DEPTH))
        self.norm = nn.LayerNorm(DIM, eps=1e-6)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.02)
                    m.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


def tokens_input(batch: int, tokens: int, seed: int = 2) -> torch.Tensor:
    """A seeded input x[B,T,768] with unit variance, standing for embedded patches."""
    return torch.randn(batch, tokens, DIM, generator=torch.Generator().manual_seed(seed))


assert vitb_macs(1, 1568) == 12 * (12 * 1568 * 768 * 768 + 2 * 1568 * 1568 * 768)
assert math.isclose(2 * vitb_macs(1, 1568) / 1e9, 356.99, rel_tol=1e-4)
