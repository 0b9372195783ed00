"""Writes small GGUF files holding only a byte-level BPE tokenizer, for the tokenizer tests to
compare our GGUF tokenizer with transformers' on files that need no download.

  make_tokenizer_gguf.py DIR   writes DIR/bpe-smollm.gguf (digits split, like SmolLM2; no BOS),
                               DIR/bpe-gpt2.gguf (plain GPT-2 splitting; adds BOS) and two files
                               of kinds we refuse, and prints their paths.
"""

import json
import sys

from gguf import GGUFWriter
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def corpus() -> list[str]:
    words = "the quick brown fox jumps over lazy dogs while coding in python and typescript".split()
    lines = []
    for i in range(400):
        w = words[i % len(words)]
        lines.append(f"{w} {words[(i * 7) % len(words)]}s {i * 37} {i}.{i % 10} def f_{w}(x): return x ** {i % 5}")
        lines.append(f"  {w.capitalize()}!  It's {i}% — café naïve 日本語 {w}_{i} {{'k': [{i}, {i + 1}]}}\n\tend")
        # Runs of spaces before digits and words, where GPT-2 and digit-first splitting disagree.
        lines.append(f"x{' ' * (1 + i % 4)}= {i}{' ' * (1 + i % 3)}# {w}\n    {w}  {i % 7}")
    return lines


def train(split_digits: bool) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.pre_tokenizer = (
        pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level]) if split_digits else byte_level
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(corpus(), trainer)
    return tokenizer


def add_tokenizer(writer: GGUFWriter, tokenizer: Tokenizer, pre: str, add_bos: bool, model_type: str = "gpt2") -> list[str]:
    """Stores the tokenizer as llama.cpp's tokenizer metadata; returns its tokens by id."""
    model = json.loads(tokenizer.to_str())["model"]
    vocab = sorted(model["vocab"].items(), key=lambda item: item[1])
    tokens = [token for token, _ in vocab]
    merges = [" ".join(m) if isinstance(m, list) else m for m in model["merges"]]
    writer.add_tokenizer_model(model_type)
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types([3 if token in SPECIAL else 1 for token in tokens])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokens.index("<|im_start|>"))
    writer.add_eos_token_id(tokens.index("<|im_end|>"))
    writer.add_unk_token_id(tokens.index("<|endoftext|>"))
    writer.add_pad_token_id(tokens.index("<|im_end|>"))
    writer.add_add_bos_token(add_bos)
    writer.add_chat_template(CHAT_TEMPLATE)
    return tokens


def write(path: str, tokenizer: Tokenizer, pre: str, add_bos: bool, model_type: str = "gpt2") -> None:
    writer = GGUFWriter(path, "llama")
    add_tokenizer(writer, tokenizer, pre, add_bos, model_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main() -> None:
    directory = sys.argv[1]
    paths = {name: f"{directory}/bpe-{name}.gguf" for name in ("smollm", "gpt2", "llama-bpe", "sentencepiece")}
    write(paths["smollm"], train(split_digits=True), "smollm", add_bos=False)
    plain = train(split_digits=False)
    write(paths["gpt2"], plain, "gpt2", add_bos=True)
    # Kinds we do not implement, for the error tests: another pre-tokenizer, and a sentencepiece model.
    write(paths["llama-bpe"], plain, "llama-bpe", add_bos=False)
    write(paths["sentencepiece"], plain, "default", add_bos=False, model_type="llama")
    print(json.dumps(paths))


if __name__ == "__main__":
    main()
