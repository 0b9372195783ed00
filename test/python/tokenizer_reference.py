"""Reference side of the tokenizer tests: transformers' own GGUF tokenizer loading.

Reads JSON on stdin: {"gguf": PATH, "strings": [...], "chats": [{"messages": [...], "add_generation_prompt": bool}]}
and prints describe_tokenizer(...) as JSON.
"""

import json
import os
import sys

from tokenizers import pre_tokenizers
from transformers import AutoTokenizer


def describe_tokenizer(path: str, texts: list, chat_requests: list) -> dict:
    """For the tokenizer AutoTokenizer.from_pretrained(dir, gguf_file=...) builds from PATH:

    strings[i]: ids with and without special tokens, the decoded text, and the ids after swapping
                in the pre-tokenizer the model's own tokenizer.json declares for llama.cpp's
                "\\p{N} then GPT-2" group (Digits(individual_digits) + ByteLevel), which
                transformers' GGUF loader does not reproduce;
    chats[i]:   apply_chat_template text and ids.
    """
    directory, name = os.path.dirname(path), os.path.basename(path)
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    digits_tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    digits_tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    )

    strings = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=True)["input_ids"]
        strings.append({
            "ids": ids,
            "ids_no_special": tokenizer(text, add_special_tokens=False)["input_ids"],
            "digit_split_ids": digits_tokenizer(text, add_special_tokens=True)["input_ids"],
            "decoded": tokenizer.decode(ids, skip_special_tokens=False),
            "decoded_skip_special": tokenizer.decode(ids, skip_special_tokens=True),
        })

    chats = []
    for chat in chat_requests:
        generation = chat["add_generation_prompt"]
        text = tokenizer.apply_chat_template(chat["messages"], tokenize=False, add_generation_prompt=generation)
        ids = tokenizer.apply_chat_template(chat["messages"], tokenize=True, add_generation_prompt=generation, return_dict=False)
        chats.append({"text": text, "ids": list(ids)})

    return {
        "strings": strings,
        "chats": chats,
        "bos_token": tokenizer.bos_token,
        "eos_token": tokenizer.eos_token,
        "vocab_size": len(tokenizer),
    }


if __name__ == "__main__":
    request = json.load(sys.stdin)
    print(json.dumps(describe_tokenizer(request["gguf"], request["strings"], request.get("chats", []))))
