"""Reference for test/optim.test.ts. Reads a JSON list of requests on stdin and prints the list
of torch's (or transformers') answers as JSON, so one test file starts Python once. Tensors travel
as base64 little-endian f32.

  {"kind": "adamw", "params": [...], "shapes": [...], "grads": [[step 0 grads, null = no grad], ...],
   "lrs": [...], "betas": [b1, b2], "eps": e, "weight_decay": w}
      -> {"params": [[per step, per param]], "exp_avg": [...], "exp_avg_sq": [...], "steps": [...]}
  {"kind": "clip", "grads": [...], "max_norm": m}  -> {"norm": n, "grads": [...]}
  {"kind": "schedule", "schedules": [{"type", "lr", "warmup", "total", "cycles", "steps"}]}
      -> [[lr at step 0, 1, ...], ...]
"""

import base64
import json
import sys

import numpy as np
import torch


def decode(data: str) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(base64.b64decode(data), dtype=np.float32).copy())


def encode(t: torch.Tensor) -> str:
    return base64.b64encode(t.detach().contiguous().numpy().astype(np.float32).tobytes()).decode()


def adamw(req: dict) -> dict:
    params = [decode(p).reshape(s).requires_grad_(True) for p, s in zip(req["params"], req["shapes"])]
    # foreach=False pins the single-tensor path, whose operation order the shader follows.
    opt = torch.optim.AdamW(params, lr=req["lrs"][0], betas=tuple(req["betas"]), eps=req["eps"],
                            weight_decay=req["weight_decay"], foreach=False)
    history = []
    for grads, lr in zip(req["grads"], req["lrs"]):
        for p, g in zip(params, grads):
            p.grad = None if g is None else decode(g).reshape(p.shape)
        opt.param_groups[0]["lr"] = lr
        opt.step()
        history.append([encode(p) for p in params])
    states = [opt.state.get(p, {}) for p in params]
    zeros = lambda p: encode(torch.zeros_like(p))
    return {
        "params": history,
        "exp_avg": [encode(s["exp_avg"]) if s else zeros(p) for s, p in zip(states, params)],
        "exp_avg_sq": [encode(s["exp_avg_sq"]) if s else zeros(p) for s, p in zip(states, params)],
        "steps": [int(s["step"].item()) if s else 0 for s in states],
    }


def clip(req: dict) -> dict:
    params = [torch.zeros(len(base64.b64decode(g)) // 4, requires_grad=True) for g in req["grads"]]
    for p, g in zip(params, req["grads"]):
        p.grad = decode(g)
    norm = torch.nn.utils.clip_grad_norm_(params, req["max_norm"])
    return {"norm": norm.item(), "grads": [encode(p.grad) for p in params]}


def schedule(req: dict) -> list:
    import transformers

    makers = {
        "constant": lambda opt, s: transformers.get_constant_schedule_with_warmup(opt, s["warmup"]),
        "linear": lambda opt, s: transformers.get_linear_schedule_with_warmup(opt, s["warmup"], s["total"]),
        "cosine": lambda opt, s: transformers.get_cosine_schedule_with_warmup(opt, s["warmup"], s["total"], s["cycles"]),
    }
    out = []
    for s in req["schedules"]:
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=s["lr"])
        scheduler = makers[s["type"]](opt, s)
        lrs = []
        for _ in range(s["steps"]):
            lrs.append(scheduler.get_last_lr()[0])
            opt.step()
            scheduler.step()
        out.append(lrs)
    return out


handlers = {"adamw": adamw, "clip": clip, "schedule": schedule}
print(json.dumps([handlers[request["kind"]](request) for request in json.load(sys.stdin)]))
