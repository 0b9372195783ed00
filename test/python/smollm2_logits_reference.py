"""transformers' own GGUF loading of SmolLM2-135M-Instruct: logits, log-probs and a greedy continuation.

usage: smollm2_logits_reference.py GGUF_PATH < {"ids": [[...]], "prompts": [[...]], "new_tokens": N}
transformers dequantizes the GGUF to float32 and undoes llama.cpp's Q/K permutation itself, so this
is an independent path to the same weights.
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM

path = sys.argv[1]
request = json.load(sys.stdin)
torch.set_num_threads(2)
model = AutoModelForCausalLM.from_pretrained(
    os.path.dirname(path), gguf_file=os.path.basename(path), torch_dtype=torch.float32, attn_implementation="eager"
)
model.eval()
ids = torch.tensor(request["ids"])
with torch.no_grad():
    logits = model(ids).logits
logprobs = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None])[..., 0]
greedy = []
for prompt in request["prompts"]:
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=request["new_tokens"], do_sample=False, eos_token_id=None, pad_token_id=0)
    greedy.append(out[0, len(prompt):].tolist())
json.dump({"logits": logits.flatten().tolist(), "logprobs": logprobs.flatten().tolist(), "greedy": greedy}, sys.stdout)
