"""transformers' own outputs for a checkpoint, as a reference for ours (npm run check-model, tests).

usage: transformers_logits.py MODEL < {"prompts": [[ids...], ...], "new_tokens": N}
MODEL is a Hugging Face checkpoint directory or a .gguf file (transformers then dequantizes it to
float32 and undoes llama.cpp's Q/K permutation itself: an independent path to the same weights).
Each prompt runs alone (no padding), in float32 with eager attention. Prints
{"logits": [per prompt, flattened [T, vocab]], "logprobs": [per prompt, next-token log-probs],
 "greedy": [per prompt, N greedy tokens]}.
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM

path = sys.argv[1]
request = json.load(sys.stdin)
torch.set_num_threads(2)
location = dict(pretrained_model_name_or_path=os.path.dirname(path), gguf_file=os.path.basename(path)) if path.endswith(".gguf") else dict(pretrained_model_name_or_path=path)
model = AutoModelForCausalLM.from_pretrained(**location, dtype=torch.float32, attn_implementation="eager")
model.eval()
result = {"logits": [], "logprobs": [], "greedy": []}
for prompt in request["prompts"]:
    ids = torch.tensor([prompt])
    with torch.no_grad():
        logits = model(ids).logits
        out = model.generate(ids, max_new_tokens=request["new_tokens"], do_sample=False, eos_token_id=None, pad_token_id=0)
    result["logits"].append(logits.flatten().tolist())
    result["logprobs"].append(torch.log_softmax(logits[0, :-1], -1).gather(-1, ids[0, 1:, None])[..., 0].tolist())
    result["greedy"].append(out[0, len(prompt):].tolist())
json.dump(result, sys.stdout)
