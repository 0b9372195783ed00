"""Writes a small Hugging Face checkpoint directory for the model-registry tests.

  make_hf_checkpoint.py DIR GGUF   DIR/config.json (a tiny LlamaForCausalLM), DIR/model.safetensors
                                   (its random weights, saved by transformers) and the tokenizer
                                   transformers builds from GGUF, saved with save_pretrained after
                                   restoring the model's digit-splitting pre-tokenizer. Prints
                                   {"tensors": {name: [shape, sum]}} for the weights.
"""

import json
import os
import sys

import torch
from tokenizers import pre_tokenizers
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

directory, gguf = sys.argv[1], sys.argv[2]
tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf))
tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
    [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
)
tokenizer.save_pretrained(directory)

torch.manual_seed(0)
config = LlamaConfig(
    vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
)
model = LlamaForCausalLM(config)
model.save_pretrained(directory)
state = {name: [list(t.shape), float(t.double().sum())] for name, t in model.state_dict().items() if name != "lm_head.weight"}
print(json.dumps({"tensors": state, "files": sorted(os.listdir(directory))}))
