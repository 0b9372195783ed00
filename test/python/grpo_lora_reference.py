"""GRPO through a real model: transformers + PEFT compute the completion log-probs, TRL's own
GRPOTrainer._compute_loss the loss, and torch autograd the LoRA gradients.

usage: grpo_lora_reference.py MODEL_DIR ADAPTER_DIR < {"sequences": [{"prompt": [...], "completion": [...]}],
        "advantages": [...], "configs": [TRL loss config, ...]}
prints [{"loss": x, "grads": {PEFT tensor name: [...]}} per config]. Log-probs are laid out as TRL
does, one row per completion aligned at its first token, so the test also checks that our
prompt+completion layout gives the same loss.
"""
import json
import sys
from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

sys.path.insert(0, str(Path(__file__).parent))
from trl_grpo_reference import GRPOTrainer, fake_trainer, loss_inputs  # noqa: E402

model_dir, adapter_dir = sys.argv[1], sys.argv[2]
request = json.load(sys.stdin)
base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
model = PeftModel.from_pretrained(base, adapter_dir, is_trainable=True)
model.eval()

sequences = request["sequences"]
width = max(len(s["prompt"]) + len(s["completion"]) for s in sequences)
longest = max(len(s["completion"]) for s in sequences)
ids = torch.tensor([s["prompt"] + s["completion"] + [0] * (width - len(s["prompt"]) - len(s["completion"])) for s in sequences])
mask = torch.tensor([[1.0] * len(s["completion"]) + [0.0] * (longest - len(s["completion"])) for s in sequences])


def completion_logps(logits):
    """log π(completion token) per row, aligned at the completion's first token (TRL's layout)."""
    logps = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None])[..., 0]
    rows = []
    for b, s in enumerate(sequences):
        start = len(s["prompt"]) - 1
        row = logps[b, start:start + len(s["completion"])]
        rows.append(torch.cat([row, row.new_zeros(longest - len(row))]))
    return torch.stack(rows)


with torch.no_grad(), model.disable_adapter():
    ref = completion_logps(model(input_ids=ids).logits)

answers = []
for cfg in request["configs"]:
    model.zero_grad()
    logps = completion_logps(model(input_ids=ids).logits)
    fake_self = fake_trainer(cfg, logps)
    inputs = loss_inputs(mask, torch.tensor(request["advantages"]), cfg["num_items_in_batch"], torch.float32,
                         ref=ref if cfg["beta"] != 0 else None)
    value = GRPOTrainer._compute_loss(fake_self, None, inputs)
    value.backward()
    grads = {}
    for name, p in model.named_parameters():
        if "lora_" in name:
            # PEFT's in-memory names carry the adapter name ("lora_A.default.weight"); files drop it.
            grads[name.replace(".default", "")] = p.grad.flatten().tolist()
    answers.append({"loss": value.item(), "grads": grads})
print(json.dumps(answers))
