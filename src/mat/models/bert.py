"""BERT for masked language modelling, randomly initialised (Devlin et al. 2018; sizes of Turc et al. 2019).

A thin wrapper around transformers' `BertForMaskedLM` that gives it the project's uniform model
contract: `model(x) -> logits`, `aux_loss()`, `layer_prefixes()`, `attention_probs(x)`, and the
layouts the partition builders read (`mat.models.partitions`).

Eager attention is the default (`attn_implementation: eager`): plain matmuls that torch.func and
FlopCounterMode both handle. `attn_implementation: sdpa` (the fused kernels, for GPU speed) trains
and measures the mNTK with sdpa (`mat.flops` registers the CPU flash kernel's FLOPs);
`attention_probs` switches to eager for its one call, since sdpa never forms the probabilities.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertConfig, BertForMaskedLM
from transformers.pytorch_utils import apply_chunking_to_forward

from mat.models.config import resolve
from mat.ntk_stages import Stage

# Turc et al. 2019 ("Well-read students learn better"): heads = hidden / 64, intermediate = 4 * hidden.
SIZES = {
    "micro": {"layers": 2, "hidden": 16, "heads": 2, "intermediate": 32, "max_len": 64},
    "tiny": {"layers": 2, "hidden": 64, "heads": 4, "intermediate": 256, "max_len": 128},
    "mini": {"layers": 4, "hidden": 256},
    "small": {"layers": 4, "hidden": 512},
    "medium": {"layers": 8, "hidden": 512},
    "base": {"layers": 12, "hidden": 768},
    "large": {"layers": 24, "hidden": 1024},
}

DEFAULTS = {
    "layers": 12,
    "hidden": 768,
    "heads": None,  # hidden // 64
    "intermediate": None,  # 4 * hidden
    "max_len": 512,
    "dropout": 0.1,  # paper Table 4
    "attn_dropout": 0.1,  # paper Table 4
    "attn_implementation": "eager",
}


class BertMLM(nn.Module):
    """`BertForMaskedLM` behind the project's model contract. `x`: LongTensor [B, T] of token ids,
    fixed length, no padding (so no attention mask); returns logits [B, T, vocab]."""

    # A head can leave the computation by dropping its q/k/v rows and output-projection columns
    # (pruning, Table 5): transformers reshapes q/k/v with `.view(..., -1, head_size)` and the
    # attention output with `.reshape(..., -1)`, and no other tensor has a per-head axis.
    heads_removable = True

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.net = BertForMaskedLM(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(input_ids=x).logits

    def aux_loss(self) -> torch.Tensor:
        """BERT has no auxiliary loss."""
        return torch.zeros((), device=self.net.cls.predictions.bias.device)

    def layer_prefixes(self) -> list[str]:
        """The transformer blocks: the "layers" of the layer-wise mNTK (Figures 2-3)."""
        return [f"net.bert.encoder.layer.{i}" for i in range(self.config.num_hidden_layers)]

    def ntk_context(self, x: torch.Tensor):
        """What every stage reads besides the hidden state: the attention mask transformers builds
        for unpadded inputs (None for eager and sdpa), from a zero-copy stand-in of the embeddings."""
        stand_in = self.net.bert.embeddings.LayerNorm.weight.new_zeros(()).expand(*x.shape, self.config.hidden_size)
        return self.net.bert._create_attention_masks(None, None, stand_in, None, None)[0]

    def ntk_stages(self) -> list[Stage]:
        """The layer chain for segmented mNTK passes (`mat.ntk_stages`), as transformers' forward
        runs it: embeddings, per layer its attention and its feed-forward, then the MLM head."""
        bert = self.net.bert
        stages = [Stage(("net.bert.embeddings",), lambda x, mask: bert.embeddings(input_ids=x))]
        for p, layer in zip(self.layer_prefixes(), bert.encoder.layer):
            stages.append(Stage((f"{p}.attention",), lambda h, mask, m=layer: m.attention(h, mask)[0]))
            stages.append(Stage(
                (f"{p}.intermediate", f"{p}.output"),
                lambda h, mask, m=layer: apply_chunking_to_forward(m.feed_forward_chunk, m.chunk_size_feed_forward, m.seq_len_dim, h),
            ))
        stages.append(Stage(("net.cls",), lambda h, mask: self.net.cls(h)))
        return stages

    def attention_layout(self) -> list[dict]:
        """Per layer, the parameters a head is sliced from. Head h owns rows [h*d, (h+1)*d) of q, k, v
        (weights and biases, dim 0) and columns [h*d, (h+1)*d) of the output projection (dim 1):
        transformers splits q/k/v with `.view(..., heads, d)`, so the head index is the major one."""
        c = self.config
        out = []
        for p in self.layer_prefixes():
            a = f"{p}.attention"
            out.append(
                {
                    "rows": [f"{a}.self.{n}.{w}" for n in ("query", "key", "value") for w in ("weight", "bias")],
                    "cols": [f"{a}.output.dense.weight"],
                    "heads": c.num_attention_heads,
                    "head_dim": c.hidden_size // c.num_attention_heads,
                }
            )
        return out

    @torch.no_grad()
    def attention_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Attention probabilities [layers, B, heads, T, T] in eval mode (train/eval mode restored).
        A fused implementation (sdpa) never forms them: the model runs with eager attention for this
        call (same weights, same function) and gets its own implementation back afterwards."""
        was_training, impl = self.training, self.config._attn_implementation
        self.eval()
        try:
            if impl != "eager":
                self.net.set_attn_implementation("eager")
            out = self.net(input_ids=x, output_attentions=True)
        finally:
            if impl != "eager":
                self.net.set_attn_implementation(impl)
            self.train(was_training)
        if not out.attentions:
            raise RuntimeError(
                "bert: the attention implementation "
                f"{self.config._attn_implementation!r} returned no attention probabilities; use 'eager'"
            )
        return torch.stack(out.attentions)


def build_bert(cfg: dict) -> BertMLM:
    """BERT-MLM from a model config: `size` (micro, tiny, mini, small, medium, base, large) and/or
    explicit layers, hidden, heads, intermediate, max_len, dropout, attn_dropout; `vocab_size` required."""
    c = resolve(cfg, "bert", SIZES, DEFAULTS, required=("vocab_size",))
    heads = c["heads"] if c["heads"] is not None else max(1, c["hidden"] // 64)
    if c["hidden"] % heads:
        raise ValueError(f"model config (bert): hidden {c['hidden']} is not divisible by heads {heads}")
    config = BertConfig(
        vocab_size=c["vocab_size"],
        hidden_size=c["hidden"],
        num_hidden_layers=c["layers"],
        num_attention_heads=heads,
        intermediate_size=c["intermediate"] if c["intermediate"] is not None else 4 * c["hidden"],
        max_position_embeddings=c["max_len"],
        hidden_dropout_prob=c["dropout"],
        attention_probs_dropout_prob=c["attn_dropout"],
        type_vocab_size=1,
        attn_implementation=c["attn_implementation"],
    )
    return BertMLM(config)


from mat.models.registry import register_model  # noqa: E402  (registration, see mat/models/registry.py)

register_model("bert", build_bert, label="BERT", inputs="text")
