"""ViT building blocks of the MAE (spec 1.3, 1.5, 1.6): patch stem, pre-norm blocks, encoder, decoder.

Attention is written out (matmul + softmax) so that every graph exports to plain ONNX ops with
parity; no dropout or drop-path (MAE pretraining uses none).
"""

from __future__ import annotations

import torch
from torch import nn

from clmae.pos_embed import sincos_2d


class Attention(nn.Module):
    """Multi-head self-attention, qkv bias, scale head_dim^-0.5."""

    def __init__(self, *, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, T, C) -> (N, T, C)."""
        n, t, c = x.shape
        qkv = self.qkv(x).reshape(n, t, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (N, heads, T, head_dim) each
        attn = (q * self.scale) @ k.transpose(-2, -1)  # (N, heads, T, T)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(n, t, c)  # (N, T, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, *, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact erf GELU, as timm's default
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, *, dim: int, num_heads: int, mlp_ratio: float, norm_eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim=dim, num_heads=num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim=dim, hidden=int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def init_vit_weights(module: nn.Module) -> None:
    """MAE init (spec 1.8): Linear Xavier-uniform with zero bias; LayerNorm weight 1, bias 0."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class PatchStem(nn.Module):
    """images (N, 3, H, W) -> tokens (N, L, D): Conv patch embedding + the frozen sin-cos table (a buffer)."""

    def __init__(self, *, image_size: int, patch_size: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.grid_size = image_size // patch_size
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.register_buffer("pos_embed", sincos_2d(embed_dim, self.grid_size, cls_token=True)[None], persistent=True)
        # Xavier-uniform as if the conv were a Linear (D, 3*p*p) (spec 1.3).
        nn.init.xavier_uniform_(self.proj.weight.view(embed_dim, -1))
        nn.init.zeros_(self.proj.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.proj(images)  # (N, D, rows, cols)
        x = x.flatten(2).transpose(1, 2)  # (N, L, D), row-major tokens
        return x + self.pos_embed[:, 1:, :]


class Encoder(nn.Module):
    """Visible tokens -> latent (N, 1+K, D): gather, prepend cls, blocks, final LayerNorm (eps 1e-6)."""

    def __init__(self, *, embed_dim: int, depth: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.blocks = nn.ModuleList(
            Block(dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, norm_eps=1e-6) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.apply(init_vit_weights)
        nn.init.normal_(self.cls_token, std=0.02)

    def forward(self, tokens: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        """tokens (N, L, D) + ids_keep (N, K) int64 -> latent (N, 1+K, D), kept tokens in ids_keep order."""
        d = tokens.shape[-1]
        visible = torch.gather(tokens, 1, ids_keep.unsqueeze(-1).expand(-1, -1, d))  # (N, K, D)
        return self.forward_sequence(visible)

    def forward_sequence(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (N, T, D) already selected (or gated) -> latent (N, 1+T, D)."""
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)  # pos-embed row 0 is zero, so cls = token
        x = torch.cat([cls, tokens], dim=1)  # (N, 1+T, D)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class Decoder(nn.Module):
    """latent (N, 1+K, D) + ids_restore (N, L) -> pred (N, L, p*p*3) in grid order (spec 1.6)."""

    def __init__(self, *, num_patches: int, grid_size: int, embed_dim: int, decoder_embed_dim: int,
                 depth: int, num_heads: int, mlp_ratio: float, patch_dim: int) -> None:
        super().__init__()
        self.num_patches = num_patches
        self.embed = nn.Linear(embed_dim, decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.register_buffer("pos_embed", sincos_2d(decoder_embed_dim, grid_size, cls_token=True)[None], persistent=True)
        self.blocks = nn.ModuleList(
            Block(dim=decoder_embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, norm_eps=1e-6) for _ in range(depth))
        self.norm = nn.LayerNorm(decoder_embed_dim, eps=1e-6)
        self.pred = nn.Linear(decoder_embed_dim, patch_dim)
        self.apply(init_vit_weights)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        x = self.embed(latent)  # (N, 1+K, Dd)
        n, _, dd = x.shape
        # L mask tokens (not L-K) after the K visible ones: ids_restore < L always indexes inside
        # the (N, K+L, Dd) block, so no data-dependent L-K shape is needed (exports with dynamic K).
        masks = self.mask_token.expand(n, self.num_patches, -1)  # (N, L, Dd)
        pool = torch.cat([x[:, 1:, :], masks], dim=1)  # (N, K+L, Dd)
        patches = torch.gather(pool, 1, ids_restore.unsqueeze(-1).expand(-1, -1, dd))  # (N, L, Dd) grid order
        x = torch.cat([x[:, :1, :], patches], dim=1) + self.pos_embed  # (N, 1+L, Dd)
        for block in self.blocks:
            x = block(x)
        x = self.pred(self.norm(x))  # (N, 1+L, p*p*3)
        return x[:, 1:, :]
