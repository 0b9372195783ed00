"""Reference for test/rope.test.ts: applies transformers' own Llama RoPE (LlamaRotaryEmbedding and
apply_rotary_pos_emb, float32 on the CPU) to x [B, T, H, D] read as JSON on stdin together with
position ids [B, T] and theta; prints the rotated x as JSON."""

import json
import sys

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
    rope_parameters={"rope_type": "default", "rope_theta": request["theta"]},
)
x = torch.tensor(request["x"], dtype=torch.float32).reshape(batch, seq, heads, head_dim)
position_ids = torch.tensor(request["positions"], dtype=torch.int64).reshape(batch, seq)
cos, sin = LlamaRotaryEmbedding(config)(x, position_ids)
# Our layout keeps heads after the sequence axis, hence unsqueeze_dim=2.
rotated, _ = apply_rotary_pos_emb(x, x, cos, sin, unsqueeze_dim=2)
print(json.dumps(rotated.flatten().tolist()))
