"""Switch Transformer encoder for masked language modelling (Fedus et al. 2021), randomly initialised.

Encoder-only: T5-style pre-norm blocks whose feed-forward is a top-1 routed mixture of experts.
Built from transformers' Switch Transformers pieces where they fit -- the self-attention block
(eager, T5 relative position bias, no score scaling), the RMS layer norm, the expert MLP
(`wi`/`wo`, no bias) -- with our own router, dispatch, load-balancing loss and MLM head, because
transformers' expert dispatch and loss use data-dependent shapes (`nonzero`, `one_hot`) that
torch.func.vmap (the mNTK) cannot batch.

Routing groups and capacity: tokens are routed per sequence (a group = one sequence of T tokens),
as transformers does, and each expert takes at most
`expert_capacity = ceil(capacity_factor * T / num_experts)` tokens of a group (Switch paper:
capacity = tokens per group / experts * capacity factor; 1.5 in the paper's Table 4). Tokens over
capacity skip the MoE (the residual carries them). Because groups are single sequences, samples in
a batch never interact, so per-sample gradients of a batched forward are exact (used by `mat.ntk`).

Every expert is its own module (`layers.{l}.moe.experts.expert_{e}`), so `requires_grad_(False)`
freezes one expert.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import SwitchTransformersConfig
from transformers.models.switch_transformers.modeling_switch_transformers import (
    SwitchTransformersAttention,
    SwitchTransformersDenseActDense,
    SwitchTransformersLayerNorm,
    SwitchTransformersLayerSelfAttention,
)

from mat.models.config import resolve
from mat.ntk_stages import Stage

SIZES = {
    "micro": {"layers": 2, "hidden": 16, "heads": 2, "intermediate": 32, "experts": 4},
    "tiny": {"layers": 2, "hidden": 64, "heads": 4, "intermediate": 256, "experts": 4},
    "paper": {"layers": 12, "hidden": 768, "heads": 12, "intermediate": 3072, "experts": 4},  # Table 4
}

DEFAULTS = {
    "layers": 12,
    "hidden": 768,
    "heads": 12,
    "intermediate": 3072,  # d_ff of each expert (Switch-Base)
    "experts": 4,  # Table 4
    "capacity_factor": 1.5,  # Table 4
    "dropout": 0.1,
    "attn_dropout": 0.1,
    "rel_buckets": 32,  # T5 relative position buckets
    "rel_max_distance": 128,
}


class RelativePositionBias(nn.Module):
    """T5's bucketed relative position bias [1, heads, T, T], computed once and shared by all blocks
    (as in T5, where the first block owns it). It sits outside the blocks, so no head or layer owns it."""

    def __init__(self, heads: int, buckets: int, max_distance: int):
        super().__init__()
        self.buckets, self.max_distance = buckets, max_distance
        self.embedding = nn.Embedding(buckets, heads)

    def forward(self, length: int) -> torch.Tensor:
        pos = torch.arange(length, device=self.embedding.weight.device)
        bucket = SwitchTransformersAttention._relative_position_bucket(
            pos[None, :] - pos[:, None], bidirectional=True, num_buckets=self.buckets, max_distance=self.max_distance
        )
        return self.embedding(bucket).permute(2, 0, 1).unsqueeze(0)


class SwitchMoE(nn.Module):
    """Pre-norm top-1 mixture-of-experts feed-forward with a residual (Switch FFN layer).

    Dispatch uses fixed shapes only (gathers into `experts x capacity` slots), so it works under
    torch.func.vmap. Empty slots hold zero vectors, which an expert (no bias, ReLU) maps to zero.
    """

    def __init__(self, config: SwitchTransformersConfig, capacity_factor: float):
        super().__init__()
        self.num_experts = config.num_experts
        self.capacity_factor = capacity_factor
        self.layer_norm = SwitchTransformersLayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.router = nn.Linear(config.d_model, config.num_experts, bias=False)
        self.experts = nn.ModuleDict({f"expert_{e}": SwitchTransformersDenseActDense(config) for e in range(config.num_experts)})
        self.dropout = nn.Dropout(config.dropout_rate)
        self.last_aux: torch.Tensor | None = None

    def capacity(self, tokens_per_group: int) -> int:
        return max(1, math.ceil(self.capacity_factor * tokens_per_group / self.num_experts))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        h = self.layer_norm(hidden)
        b, t, d = h.shape
        n_exp, cap = self.num_experts, self.capacity(t)
        probs = torch.softmax(self.router(h), dim=-1)  # [B, T, E]
        gate, top = probs.max(dim=-1)  # top-1 routing
        onehot = (top.unsqueeze(-1) == torch.arange(n_exp, device=h.device)).long()
        # Load-balancing loss (Fedus et al. 2021, Eq. 4-6): E * sum_e f_e * P_e, with f_e the fraction of
        # a group's tokens whose top-1 choice is e and P_e its mean router probability; mean over groups.
        self.last_aux = n_exp * (onehot.to(probs.dtype).mean(1) * probs.mean(1)).sum(-1).mean()
        pos = (onehot.cumsum(dim=1) * onehot).sum(-1) - 1  # place of each token in its expert's queue
        slot = torch.where(pos < cap, top * cap + pos, n_exp * cap)  # n_exp*cap: dropped (a dummy slot)
        # Which token fills each slot (t = the zero row for empty slots).
        table = torch.full((b, n_exp * cap + 1), t, dtype=torch.long, device=h.device)
        table = table.scatter(1, slot, torch.arange(t, device=h.device).expand(b, t))[:, : n_exp * cap]
        h_pad = torch.cat([h, h.new_zeros(b, 1, d)], dim=1)
        x = h_pad.gather(1, table.unsqueeze(-1).expand(-1, -1, d)).view(b, n_exp, cap, d)
        y = torch.stack([self.experts[f"expert_{e}"](x[:, e]) for e in range(n_exp)], dim=1)
        y_pad = torch.cat([y.reshape(b, n_exp * cap, d), y.new_zeros(b, 1, d)], dim=1)
        out = y_pad.gather(1, slot.unsqueeze(-1).expand(-1, -1, d)) * gate.unsqueeze(-1)
        return hidden + self.dropout(out)


class SwitchBlock(nn.Module):
    """One encoder block: pre-norm self-attention (transformers' T5-style block) then the MoE FFN."""

    def __init__(self, config: SwitchTransformersConfig, capacity_factor: float, attn_dropout: float):
        super().__init__()
        self.attn = SwitchTransformersLayerSelfAttention(config, has_relative_attention_bias=False)
        self.attn.SelfAttention.dropout = attn_dropout  # dropout on attention probabilities
        self.moe = SwitchMoE(config, capacity_factor)

    def forward(self, hidden: torch.Tensor, position_bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, _, probs = self.attn(hidden, position_bias=position_bias)
        return self.moe(hidden), probs


class SwitchMLM(nn.Module):
    """Switch-Transformer encoder + MLM head. `x`: LongTensor [B, T]; returns logits [B, T, vocab]."""

    def __init__(self, config: SwitchTransformersConfig, capacity_factor: float, attn_dropout: float, rel: tuple[int, int]):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.rel_bias = RelativePositionBias(config.num_heads, *rel)
        self.layers = nn.ModuleList(SwitchBlock(config, capacity_factor, attn_dropout) for _ in range(config.num_layers))
        self.final_norm = SwitchTransformersLayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size)
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        """T5/Switch initialisation as in transformers (factor 1); router and LM head scaled by
        d_model^-0.5 so that initial router and output logits are O(1)."""
        d, dkv, heads, dff = self.config.d_model, self.config.d_kv, self.config.num_heads, self.config.d_ff
        nn.init.normal_(self.embed.weight, std=1.0)
        nn.init.normal_(self.rel_bias.embedding.weight, std=d**-0.5)
        for block in self.layers:
            a = block.attn.SelfAttention
            nn.init.normal_(a.q.weight, std=(d * dkv) ** -0.5)
            nn.init.normal_(a.k.weight, std=d**-0.5)
            nn.init.normal_(a.v.weight, std=d**-0.5)
            nn.init.normal_(a.o.weight, std=(heads * dkv) ** -0.5)
            nn.init.normal_(block.moe.router.weight, std=d**-0.5)
            for expert in block.moe.experts.values():
                nn.init.normal_(expert.wi.weight, std=d**-0.5)
                nn.init.normal_(expert.wo.weight, std=dff**-0.5)
        nn.init.normal_(self.lm_head.weight, std=d**-0.5)
        nn.init.zeros_(self.lm_head.bias)

    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if x.dim() != 2:
            raise ValueError(f"switch: expected token ids [B, T], got shape {tuple(x.shape)}")
        hidden = self.dropout(self.embed(x))
        bias = self.rel_bias(x.shape[1])
        probs = []
        for block in self.layers:
            hidden, p = block(hidden, bias)
            probs.append(p)
        return self.lm_head(self.dropout(self.final_norm(hidden))), probs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x)[0]

    def ntk_context(self, x: torch.Tensor) -> torch.Tensor:
        """What every stage reads besides the hidden state: the relative position bias (`_run`)."""
        return self.rel_bias(x.shape[1])

    def ntk_stages(self) -> list[Stage]:
        """The layer chain for segmented mNTK passes (`mat.ntk_stages`), as `_run` computes it:
        the embedding, then per block its attention and its MoE, then the final norm and LM head."""
        stages = [Stage(("embed",), lambda x, bias: self.dropout(self.embed(x)))]
        for p, block in zip(self.layer_prefixes(), self.layers):
            stages.append(Stage((f"{p}.attn",), lambda h, bias, b=block: b.attn(h, position_bias=bias)[0]))
            stages.append(Stage((f"{p}.moe",), lambda h, bias, b=block: b.moe(h)))
        stages.append(Stage(("final_norm", "lm_head"), lambda h, bias: self.lm_head(self.dropout(self.final_norm(h)))))
        return stages

    def aux_loss(self) -> torch.Tensor:
        """Router load-balancing loss of the last forward, averaged over the MoE layers, unweighted
        (1.0 for perfectly balanced routing; the trainer multiplies by its coefficient)."""
        losses = [b.moe.last_aux for b in self.layers]
        if any(v is None for v in losses):
            raise RuntimeError("switch: aux_loss() called before any forward pass")
        return torch.stack(losses).mean()

    def layer_prefixes(self) -> list[str]:
        """The encoder blocks: the "layers" of the layer-wise mNTK."""
        return [f"layers.{i}" for i in range(len(self.layers))]

    def attention_layout(self) -> list[dict]:
        """Head h of a block owns rows [h*d,(h+1)*d) of q, k, v and columns of o (no biases in T5)."""
        out = []
        for p in self.layer_prefixes():
            a = f"{p}.attn.SelfAttention"
            out.append(
                {
                    "rows": [f"{a}.q.weight", f"{a}.k.weight", f"{a}.v.weight"],
                    "cols": [f"{a}.o.weight"],
                    "heads": self.config.num_heads,
                    "head_dim": self.config.d_kv,
                }
            )
        return out

    def expert_layout(self) -> list[list[list[str]]]:
        """Per block, per expert, the names of that expert's parameters (whole tensors)."""
        return [
            [[f"{p}.moe.experts.expert_{e}.{w}.weight" for w in ("wi", "wo")] for e in range(self.config.num_experts)]
            for p in self.layer_prefixes()
        ]

    @torch.no_grad()
    def attention_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Attention probabilities [layers, B, heads, T, T] in eval mode (train/eval mode restored)."""
        was_training = self.training
        self.eval()
        try:
            probs = self._run(x)[1]
        finally:
            self.train(was_training)
        return torch.stack(probs)


def build_switch(cfg: dict) -> SwitchMLM:
    """Switch-MLM from a model config: `size` (micro, tiny, paper) and/or explicit layers, hidden,
    heads, intermediate, experts, capacity_factor, dropout, attn_dropout; `vocab_size` required."""
    c = resolve(cfg, "switch", SIZES, DEFAULTS, required=("vocab_size",))
    if c["hidden"] % c["heads"]:
        raise ValueError(f"model config (switch): hidden {c['hidden']} is not divisible by heads {c['heads']}")
    if c["capacity_factor"] <= 0:
        raise ValueError(f"model config (switch): capacity_factor must be > 0, got {c['capacity_factor']}")
    config = SwitchTransformersConfig(
        vocab_size=c["vocab_size"],
        d_model=c["hidden"],
        d_kv=c["hidden"] // c["heads"],
        d_ff=c["intermediate"],
        num_layers=c["layers"],
        num_heads=c["heads"],
        num_experts=c["experts"],
        dropout_rate=c["dropout"],
        relative_attention_num_buckets=c["rel_buckets"],
        relative_attention_max_distance=c["rel_max_distance"],
        is_decoder=False,
        attn_implementation="eager",  # the only one T5-style attention has
    )
    return SwitchMLM(config, c["capacity_factor"], c["attn_dropout"], (c["rel_buckets"], c["rel_max_distance"]))


from mat.models.registry import register_model  # noqa: E402  (registration, see mat/models/registry.py)

register_model("switch", build_switch, label="Switch", inputs="text")
