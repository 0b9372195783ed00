"""Reference for test/ops-logprobs.test.ts. Reads JSON on stdin: cases of logits [N, V] (base64
little-endian f32), targets [N], mask [N] and upstream weights [N]; prints per case, from torch
in float32: log_softmax + gather, entropy, the masked-mean F.cross_entropy and its dlogits, and
the dlogits of Σ weights·logprobs."""

import base64
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F


def f32(data: str, shape: list[int]) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(base64.b64decode(data), dtype=np.float32).copy()).reshape(shape)


def run(case: dict) -> dict:
    n, v = case["n"], case["v"]
    logits = f32(case["logits"], [n, v]).requires_grad_(True)
    targets = torch.tensor(case["targets"], dtype=torch.long)
    mask = torch.tensor(case["mask"], dtype=torch.float32)
    weights = torch.tensor(case["weights"], dtype=torch.float32)

    log_probs = torch.log_softmax(logits, dim=-1)
    token_logprobs = log_probs.gather(-1, targets[:, None]).squeeze(-1)
    entropy = -(log_probs.exp() * log_probs).sum(-1)
    (dlogprobs,) = torch.autograd.grad((weights * token_logprobs).sum(), logits)

    loss = (F.cross_entropy(logits, targets, reduction="none") * mask).sum() / mask.sum()
    (dloss,) = torch.autograd.grad(loss, logits)
    return {
        "logprobs": token_logprobs.tolist(),
        "entropy": entropy.tolist(),
        "grad_logprobs": dlogprobs.flatten().tolist(),
        "loss": loss.item(),
        "grad_loss": dloss.flatten().tolist(),
    }


print(json.dumps([run(case) for case in json.load(sys.stdin)]))
