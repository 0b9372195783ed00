"""Reference for test/advantages.test.ts and test/grpo-loss.test.ts: runs TRL's own GRPOTrainer
code (trl 1.16) on the tests' numbers. Reads a JSON list of requests on stdin, prints the list of
answers as JSON (one Python start per test file). Arrays travel as JSON lists of numbers; NaN as null.

  {"kind": "advantages", "rewards_per_func": [[per completion, per function]], "names": [...],
   "weights": [...], "num_generations": G, "scale_rewards": s, "aggregation": a}
      -> {"advantages": [...], "metrics": {TRL metric name: value}}
     Runs the advantage lines of GRPOTrainer._generate_and_score_completions, cut from TRL's source
     at run time (from `unscorable_mask = ...` to the `frac_reward_zero_std` log) and executed in
     the trainer module's globals, in float64.

  {"kind": "loss", "dtype": "float32"|"float64", "logprobs": [[B x T]], "old": [[...]] | null,
   "ref": [[...]] | null, "advantages": [...], "mask": [[...]], "config": {...}}
      -> {"loss": x, "grad": [[B x T]], "metrics": {TRL metric name: value}}
     Calls GRPOTrainer._compute_loss with a stand-in `self` carrying the config attributes it reads,
     and `_get_per_token_logps_and_entropies` returning the given log-probs as a leaf tensor that
     requires grad; the gradient is torch autograd's d(loss)/d(logprobs).
"""

import inspect
import json
import math
import sys
import textwrap
from collections import defaultdict
from types import SimpleNamespace

import torch
from trl.trainer import grpo_trainer
from trl.trainer.grpo_trainer import GRPOTrainer


def tensor(values, dtype) -> torch.Tensor:
    return torch.tensor([[math.nan if v is None else v for v in row] for row in values] if isinstance(values[0], list)
                        else [math.nan if v is None else v for v in values], dtype=dtype)


def plain(x: float) -> float | None:
    return None if math.isnan(x) else x


class FakeAccelerator:
    """One process: gathers and reductions are identities."""

    num_processes = 1
    process_index = 0
    is_main_process = True
    sync_gradients = True

    def gather(self, x):
        return x

    def gather_for_metrics(self, x):
        return x

    def reduce(self, x, reduction="sum"):
        return x


def trl_source_lines(method, start: str, end: str) -> str:
    """The source of `method` from the line containing `start` to the line containing `end`, dedented."""
    lines = inspect.getsource(method).splitlines()
    first = next(i for i, line in enumerate(lines) if start in line)
    last = next(i for i in range(first, len(lines)) if end in lines[i])
    return textwrap.dedent("\n".join(lines[first:last + 1]))


ADVANTAGE_CODE = trl_source_lines(GRPOTrainer._generate_and_score_completions,
                                  "unscorable_mask = torch.isnan(rewards_per_func)", '"frac_reward_zero_std"')


def advantages(req: dict) -> dict:
    rewards_per_func = tensor(req["rewards_per_func"], torch.float64)
    n = rewards_per_func.shape[0]
    fake_self = SimpleNamespace(
        multi_objective_aggregation=req["aggregation"],
        scale_rewards=req["scale_rewards"],
        reward_weights=torch.tensor(req["weights"], dtype=torch.float64),
        reward_funcs=[None] * len(req["names"]),
        reward_func_names=req["names"],
        accelerator=FakeAccelerator(),
        _metrics={"train": defaultdict(list)},
    )
    scope = dict(vars(grpo_trainer))
    scope.update(self=fake_self, rewards_per_func=rewards_per_func, num_generations=req["num_generations"],
                 device="cpu", mode="train", prompts=[None] * n)
    exec(ADVANTAGE_CODE, scope)
    metrics = {k: plain(v[-1]) for k, v in fake_self._metrics["train"].items()}
    return {"advantages": scope["advantages"].tolist(), "metrics": metrics}


def fake_trainer(cfg: dict, per_token_logps) -> SimpleNamespace:
    """A stand-in GRPOTrainer `self` with the config attributes _compute_loss reads; the model's
    forward is replaced by `per_token_logps` (entropies are only logged)."""
    args = SimpleNamespace(
        delta=cfg["delta"],
        use_bias_correction_kl=cfg["use_bias_correction_kl"],
        steps_per_generation=cfg["steps_per_generation"],
        sapo_temperature_pos=cfg["sapo_temperature_pos"],
        sapo_temperature_neg=cfg["sapo_temperature_neg"],
        vespo_k_pos=cfg["vespo_k_pos"],
        vespo_lambda_pos=cfg["vespo_lambda_pos"],
        vespo_k_neg=cfg["vespo_k_neg"],
        vespo_lambda_neg=cfg["vespo_lambda_neg"],
    )
    return SimpleNamespace(
        args=args,
        beta=cfg["beta"],
        epsilon_low=cfg["epsilon_low"],
        epsilon_high=cfg["epsilon_high"],
        loss_type=cfg["loss_type"],
        importance_sampling_level=cfg["importance_sampling_level"],
        max_completion_length=cfg["max_completion_length"],
        current_gradient_accumulation_steps=cfg["gradient_accumulation_steps"],
        top_entropy_quantile=1.0,
        aux_loss_enabled=False,
        off_policy_mask_threshold=None,
        use_vllm=False,
        vllm_importance_sampling_correction=False,
        _entropy_bonus_enabled=False,
        model=SimpleNamespace(training=True),
        accelerator=FakeAccelerator(),
        _metrics={"train": defaultdict(list)},
        get_gamma_weights=GRPOTrainer.get_gamma_weights,
        _get_per_token_logps_and_entropies=lambda *a, **k: (per_token_logps, torch.zeros_like(per_token_logps), None),
    )


def loss_inputs(mask, advantages, num_items, dtype, old=None, ref=None) -> dict:
    b, t = mask.shape
    inputs = {
        "prompt_ids": torch.zeros(b, 1, dtype=torch.long),
        "prompt_mask": torch.ones(b, 1, dtype=torch.long),
        "completion_ids": torch.zeros(b, t, dtype=torch.long),
        "completion_mask": mask,
        "advantages": advantages,
        "num_items_in_batch": torch.tensor(float(num_items), dtype=dtype),
    }
    if old is not None:
        inputs["old_per_token_logps"] = old
    if ref is not None:
        inputs["ref_per_token_logps"] = ref
    return inputs


def loss(req: dict) -> dict:
    dtype = getattr(torch, req["dtype"])
    cfg = req["config"]
    logprobs = tensor(req["logprobs"], dtype).requires_grad_(True)
    fake_self = fake_trainer(cfg, logprobs)
    inputs = loss_inputs(
        tensor(req["mask"], dtype), tensor(req["advantages"], dtype), cfg["num_items_in_batch"], dtype,
        None if req["old"] is None else tensor(req["old"], dtype), None if req["ref"] is None else tensor(req["ref"], dtype),
    )
    value = GRPOTrainer._compute_loss(fake_self, None, inputs)
    (grad,) = torch.autograd.grad(value, logprobs)
    metrics = {k: plain(v[-1]) for k, v in fake_self._metrics["train"].items() if k != "entropy"}
    return {"loss": value.item(), "grad": grad.tolist(), "metrics": metrics}


KINDS = {"advantages": advantages, "loss": loss}

if __name__ == "__main__":
    print(json.dumps([KINDS[req["kind"]](req) for req in json.load(sys.stdin)]))
