"""Reference for test/rope.test.ts: applies transformers' own Llama RoPE (LlamaRotaryEmbedding and
apply_rotary_pos_emb, float32 on the CPU) to x [B, T, H, D] read as JSON on stdin together with
position ids [B, T], theta and optionally "rope_parameters" (a rope_type and its parameters) and
"max_position_embeddings"; prints {"rotated": x rotated, "inv_freq": [...], "attention_scaling": s}."""

import json
import os
import sys

# torch's vectorised powf is not correctly rounded everywhere, and which one runs depends on the CPU:
# with AVX2 it gives 46.415882 for 10000 ** (20/48), 1 ulp under the correctly rounded 46.415886 that
# its portable kernels (and AVX-512) give. The portable kernels make the reference the same on every
# machine. Read when torch is imported.
os.environ["ATEN_CPU_CAPABILITY"] = "default"

import torch
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

request = json.load(sys.stdin)
batch, seq, heads, head_dim = request["shape"]
config = LlamaConfig(
    hidden_size=heads * head_dim,
    num_attention_heads=heads,
    num_key_value_heads=heads,
    head_dim=head_dim,
    max_position_embeddings=request.get("max_position_embeddings", 2048),
    rope_parameters={"rope_type": "default", **request.get("rope_parameters", {}), "rope_theta": request["theta"]},
)
x = torch.tensor(request["x"], dtype=torch.float32).reshape(batch, seq, heads, head_dim)
position_ids = torch.tensor(request["positions"], dtype=torch.int64).reshape(batch, seq)
rotary = LlamaRotaryEmbedding(config)
cos, sin = rotary(x, position_ids)
# Our layout keeps heads after the sequence axis, hence unsqueeze_dim=2.
rotated, _ = apply_rotary_pos_emb(x, x, cos, sin, unsqueeze_dim=2)
print(json.dumps({
    "rotated": rotated.flatten().tolist(),
    "inv_freq": rotary.inv_freq.tolist(),
    "attention_scaling": float(rotary.attention_scaling),
}))
