"""One GRPO step with TRL's GRPOTrainer + PEFT on the CPU: the peer of bench/grpo-step.ts, doing the
same work (the prompts, model, LoRA, sampling and loss settings the project's step used, which
bench/peer/run.ts passes in as JSON). Prints one JSON object with the timings and token counts.

  python bench/peer/trl_grpo_step.py --case case.json --model-dir .cache/peer/smollm2-135m-f32 \
      [--gguf .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf] [--threads N] [--gradient-checkpointing] [--warmup]
--warmup first trains the same step with a throwaway trainer and model (same seed: the same rollout),
then times a fresh one, so the timed step is free of what only a process's first step costs.

--model-dir is created from --gguf when it does not exist: transformers' Trainer refuses a model
loaded from GGUF ("quantized with GGUF ... do not support training") and save_pretrained refuses to
write one, so the GGUF is loaded (dequantised to f32), its weights moved into a fresh model built
from the same config without quantization_config, and that plain f32 checkpoint saved.

case.json: {"prompts": [{"messages": [...], "prompt_ids": [...], "example": {...}}],
            "num_generations", "max_new_tokens", "micro_batch_size", "temperature", "top_p", "top_k",
            "beta", "epsilon", "loss_type", "scale_rewards", "learning_rate", "adam_betas",
            "weight_decay", "max_grad_norm", "lora": {"r", "alpha", "dropout", "targets"},
            "score_command": [argv of a scorer reading rows.jsonl given as its last argument]}
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict


def dequantize(gguf_path: str, out_dir: str) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = os.path.split(os.path.abspath(gguf_path))
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype="float32")
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype="float32")
    model.load_state_dict(quantized.state_dict())
    partial = out_dir + ".partial"
    model.save_pretrained(partial)
    AutoTokenizer.from_pretrained(folder, gguf_file=name).save_pretrained(partial)
    os.replace(partial, out_dir)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", required=True)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--gguf")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    # TRL turns activation recomputation on by default; the project does not recompute the decoder.
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--warmup", action="store_true")
    args = parser.parse_args()
    case = json.load(open(args.case))

    import torch

    torch.set_num_threads(args.threads)
    if not os.path.isdir(args.model_dir):
        if not args.gguf:
            sys.exit(f"{args.model_dir} does not exist: pass --gguf to create it")
        started = time.perf_counter()
        dequantize(args.gguf, args.model_dir)
        print(f"dequantised {args.gguf} to {args.model_dir} in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    prompts = case["prompts"]
    # Same work: TRL's own tokenisation of each prompt must give the ids the project trained on.
    for p in prompts:
        ids = tokenizer.apply_chat_template(p["messages"], add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        if list(ids) != p["prompt_ids"]:
            sys.exit(f"prompt tokenises differently here: {len(ids)} vs {len(p['prompt_ids'])} ids for {p['messages']!r}")

    def reward(prompts, completions, example, **_):
        """The project's own grader for the task, so both sides score alike."""
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as rows:
            for completion, row in zip(completions, example, strict=True):
                row = json.loads(row)
                text = completion[-1]["content"] if isinstance(completion, list) else completion
                rows.write(json.dumps({"prompt": row["prompt"], "completion": text, "example": row}) + "\n")
        try:
            out = subprocess.run([*case["score_command"], rows.name], check=True, capture_output=True, text=True).stdout
        finally:
            os.unlink(rows.name)
        return [json.loads(line)["total"] for line in out.splitlines() if line.strip()]

    g = case["num_generations"]
    n = len(prompts) * g
    micro = case["micro_batch_size"]
    config = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-grpo-step-"),
        use_cpu=True,
        bf16=False,
        fp16=False,
        max_steps=1,
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=n // micro,
        num_generations=g,
        generation_batch_size=n,
        max_completion_length=case["max_new_tokens"],
        temperature=case["temperature"],
        top_p=case["top_p"],
        top_k=case["top_k"],
        beta=case["beta"],
        epsilon=case["epsilon"],
        loss_type=case["loss_type"],
        scale_rewards=case["scale_rewards"],
        learning_rate=case["learning_rate"],
        adam_beta1=case["adam_betas"][0],
        adam_beta2=case["adam_betas"][1],
        weight_decay=case["weight_decay"],
        max_grad_norm=case["max_grad_norm"],
        lr_scheduler_type="cosine",
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=0,
        dataloader_num_workers=0,
        gradient_checkpointing=args.gradient_checkpointing,
    )
    lora = case["lora"]
    peft_config = LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"], target_modules=lora["targets"], task_type="CAUSAL_LM")
    dataset = Dataset.from_list([{"prompt": p["messages"], "example": json.dumps(p["example"])} for p in prompts])
    def new_trainer():
        model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32)
        return GRPOTrainer(model=model, reward_funcs=reward, args=config, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config)

    warmup_s = None
    if args.warmup:
        started = time.perf_counter()
        new_trainer().train()
        warmup_s = time.perf_counter() - started
    trainer = new_trainer()

    seconds = defaultdict(float)

    def timed(name, method):
        def run(*a, **k):
            started = time.perf_counter()
            try:
                return method(*a, **k)
            finally:
                seconds[name] += time.perf_counter() - started

        return run

    # Instance attributes shadow the methods, so TRL's own calls through self are timed.
    trainer._generate = timed("generation", trainer._generate)
    trainer._calculate_rewards = timed("reward", trainer._calculate_rewards)
    trainer._generate_and_score_completions = timed("rollout", trainer._generate_and_score_completions)
    started = time.perf_counter()
    trainer.train()
    step = time.perf_counter() - started
    logged = next(row for row in reversed(trainer.state.log_history) if "completions/mean_length" in row)
    prompt_tokens = sum(len(p["prompt_ids"]) for p in prompts) * g
    completion_tokens = logged["completions/mean_length"] * n
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "gradient_checkpointing": args.gradient_checkpointing,
        "warmup_s": warmup_s,
        "step_s": step,
        "generation_s": seconds["generation"],
        "reward_s": seconds["reward"],
        # The rest of the rollout: tokenising, advantages, and log-probs TRL needs before training.
        "rollout_other_s": seconds["rollout"] - seconds["generation"] - seconds["reward"],
        "train_s": step - seconds["rollout"],
        "completion_tokens": completion_tokens,
        "trained_tokens": prompt_tokens + completion_tokens,
        "mean_completion_length": logged["completions/mean_length"],
        "reward": logged.get("reward"),
        # Peak resident set of the whole process (ru_maxrss is in KiB on Linux), start-up included.
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
