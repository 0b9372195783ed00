"""Reference side of the tokenizer tests: transformers' own GGUF tokenizer loading.

Reads JSON on stdin: {"gguf": PATH, "strings": [...], "chats": [{"messages": [...], "add_generation_prompt": bool}]}
and prints, for the tokenizer AutoTokenizer.from_pretrained(dir, gguf_file=...) builds from PATH:
  strings[i]: ids with and without special tokens, the decoded text, and the ids after swapping in
              the pre-tokenizer the model's own tokenizer.json declares for llama.cpp's "\\p{N}
              then GPT-2" group (Digits(individual_digits) + ByteLevel), which transformers' GGUF
              loader does not reproduce;
  chats[i]:   apply_chat_template text and ids.
"""

import json
import os
import sys

from tokenizers import pre_tokenizers
from transformers import AutoTokenizer

request = json.load(sys.stdin)
path = request["gguf"]
tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
digits_tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
digits_tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
    [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
)

strings = []
for text in request["strings"]:
    ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    strings.append({
        "ids": ids,
        "ids_no_special": tokenizer(text, add_special_tokens=False)["input_ids"],
        "digit_split_ids": digits_tokenizer(text, add_special_tokens=True)["input_ids"],
        "decoded": tokenizer.decode(ids, skip_special_tokens=False),
        "decoded_skip_special": tokenizer.decode(ids, skip_special_tokens=True),
    })

chats = []
for chat in request.get("chats", []):
    text = tokenizer.apply_chat_template(chat["messages"], tokenize=False, add_generation_prompt=chat["add_generation_prompt"])
    ids = tokenizer.apply_chat_template(
        chat["messages"], tokenize=True, add_generation_prompt=chat["add_generation_prompt"], return_dict=False
    )
    chats.append({"text": text, "ids": list(ids)})

print(json.dumps({
    "strings": strings,
    "chats": chats,
    "bos_token": tokenizer.bos_token,
    "eos_token": tokenizer.eos_token,
    "vocab_size": len(tokenizer),
}))
