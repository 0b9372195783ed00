"""The SFT loss of a whole model and the gradient of every trainable parameter, from transformers
(and PEFT, given an adapter) with torch autograd in float64: the reference for
test/composite.test.ts and test/lora-model.test.ts.

usage: sft_grad_reference.py MODEL_DIR [ADAPTER_DIR] < {"ids": [[...], ...], "targets": [[...], ...], "mask": [[...], ...]}
The batch is laid out as the trainer lays it out (right-padded rows, position t predicting
targets[t], mask 1 on completion tokens); the loss is the mean cross-entropy under the mask. Prints
{"loss": x, "grads": {name: [...] flattened}}: every parameter of the model (a tied head's gradient
is in the embedding's), or with an adapter its LoRA matrices only, under the names PEFT saves them by.
"""
import json
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

model_dir = sys.argv[1]
adapter_dir = sys.argv[2] if len(sys.argv) > 2 else None
batch = json.load(sys.stdin)
# eager attention: the same math as ours, no fused kernels with their own rounding.
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float64, attn_implementation="eager")
if adapter_dir is not None:
    model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=True).to(torch.float64)
model.eval()

ids = torch.tensor(batch["ids"])
targets = torch.tensor(batch["targets"])
mask = torch.tensor(batch["mask"], dtype=torch.float64)
# Causal attention alone: right padding cannot reach the positions before it.
logits = model(input_ids=ids).logits
per_token = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
loss = (per_token * mask.flatten()).sum() / mask.sum()
loss.backward()
print(json.dumps({
    "loss": loss.item(),
    "grads": {name.replace(".default.", "."): p.grad.flatten().tolist() for name, p in model.named_parameters() if p.requires_grad},
}))
