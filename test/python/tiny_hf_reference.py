"""Builds a tiny random decoder checkpoint with transformers and records its outputs.

usage: tiny_hf_reference.py {llama|qwen2|mistral|qwen3} OUT_DIR [CONFIG_JSON]
CONFIG_JSON overrides config fields (sliding windows, head_dim, rope scaling, ...); its optional
"_steps" sets the length of the scored sequences (default 13).
Writes OUT_DIR/{config.json, model.safetensors} and OUT_DIR/reference.json with the logits and
next-token log-probs on fixed ids, and greedy continuations of a left-padded batch.
"""
import json
import sys

import torch
from transformers import AutoConfig, AutoModelForCausalLM

arch, out_dir = sys.argv[1], sys.argv[2]
overrides = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
steps = overrides.pop("_steps", 13)
torch.manual_seed(0)
common = dict(
    vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
    rms_norm_eps=1e-5, tie_word_embeddings=False, initializer_range=0.1,
    bos_token_id=1, eos_token_id=2, pad_token_id=0,
)
theta = {"llama": 10000.0, "qwen2": 1000000.0, "mistral": 10000.0, "qwen3": 1000000.0}
if arch not in theta:
    raise SystemExit(f"unknown arch {arch}")
config = AutoConfig.for_model(arch, **{**common, "rope_theta": theta[arch], **overrides})
model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
with torch.no_grad():
    # Random norm weights and biases, so a wrong mapping of any of them changes the logits.
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            p.copy_(1 + 0.2 * torch.randn_like(p))
        elif name.endswith(".bias"):
            p.copy_(0.1 * torch.randn_like(p))
model.eval()
model.save_pretrained(out_dir, safe_serialization=True)

ids = torch.randint(3, 300, (2, steps), generator=torch.Generator().manual_seed(1))
with torch.no_grad():
    logits = model(ids).logits
logprobs = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None])[..., 0]

# Greedy continuation of a left-padded batch of prompts of different lengths.
prompts = [[5, 17, 42, 99, 7], [8, 250, 3]]
width = max(len(p) for p in prompts)
padded = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
with torch.no_grad():
    generated = model.generate(
        input_ids=padded, attention_mask=mask, max_new_tokens=12, do_sample=False,
        eos_token_id=None, pad_token_id=0,
    )

json.dump({
    "ids": ids.tolist(),
    "logits": logits.flatten().tolist(),
    "logprobs": logprobs.flatten().tolist(),
    "prompts": prompts,
    "greedy": generated[:, width:].tolist(),
}, open(f"{out_dir}/reference.json", "w"))
print(json.dumps({"vocab": logits.shape[-1]}))
