"""PEFT as the reference for our LoRA adapters.

usage:
  peft_reference.py logits MODEL_DIR [ADAPTER_DIR]   ids (JSON [[...], ...]) on stdin
      Loads MODEL_DIR with transformers (and ADAPTER_DIR with PeftModel.from_pretrained when
      given) and prints {"logits": [...]} (flattened, f32) for those ids.
  peft_reference.py create MODEL_DIR ADAPTER_DIR R ALPHA RSLORA TARGETS
      Makes a LoRA adapter with PEFT itself (TARGETS comma-separated, RSLORA 0/1), with random
      non-zero B (PEFT would start it at zero, which would hide any mistake in B's layout), and
      saves it with save_pretrained.
"""
import json
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM


def load_base(model_dir):
    # eager attention: the same math as ours, no fused kernels with their own rounding.
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")


def logits(model_dir, adapter_dir=None):
    model = load_base(model_dir)
    if adapter_dir is not None:
        model = PeftModel.from_pretrained(model, adapter_dir)
    model.eval()
    ids = torch.tensor(json.load(sys.stdin))
    with torch.no_grad():
        out = model(input_ids=ids).logits
    print(json.dumps({"logits": out.flatten().tolist()}))


def create(model_dir, adapter_dir, r, alpha, rslora, targets):
    torch.manual_seed(5)
    config = LoraConfig(
        r=r, lora_alpha=alpha, use_rslora=rslora, target_modules=targets, lora_dropout=0.0,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(load_base(model_dir), config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.2 * torch.randn_like(p))
    model.save_pretrained(adapter_dir)


mode = sys.argv[1]
if mode == "logits":
    logits(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
elif mode == "create":
    create(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), sys.argv[6] == "1", sys.argv[7].split(","))
else:
    raise SystemExit(f"unknown mode {mode}")
