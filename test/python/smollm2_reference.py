"""Reference side of test/io-smollm2.test.ts, for the real SmolLM2-135M-Instruct GGUF.

Reads JSON on stdin: {"gguf": PATH, "strings": [...], "chats": [...]} and prints:
  config:    transformers' AutoConfig for the file (gguf_file=...);
  gguf:      per GGUF tensor, the sha256 of gguf-py's dequantization as little-endian f32;
  hf:        per Hugging Face parameter name (transformers' own GGUF name map, from a meta-device
             model), the sha256 of the tensor after transformers' Llama Q/K reverse permutation;
  tokenizer: tokenizer_reference.describe_tokenizer on the strings and chats.
"""

import hashlib
import json
import os
import sys

import numpy as np
import torch
from gguf import GGUFReader, dequantize
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor, get_gguf_hf_weights_map

from tokenizer_reference import describe_tokenizer


def digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values, dtype=np.float32).tobytes()).hexdigest()


request = json.load(sys.stdin)
path = request["gguf"]
config = AutoConfig.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
with torch.device("meta"):
    model = AutoModelForCausalLM.from_config(config)
processor = LlamaTensorProcessor(config=config.to_dict())
hf_names = get_gguf_hf_weights_map(model, processor)

gguf, hf = {}, {}
for tensor in GGUFReader(path).tensors:
    values = dequantize(tensor.data, tensor.tensor_type)
    gguf[tensor.name] = {"type": tensor.tensor_type.name, "shape": list(values.shape), "sha256": digest(values)}
    if tensor.name in hf_names:
        hf[hf_names[tensor.name]] = {"gguf_name": tensor.name, "sha256": digest(processor.process(values, tensor.name).weights)}

print(json.dumps({
    "config": config.to_dict(),
    "gguf": gguf,
    "hf": hf,
    "tokenizer": describe_tokenizer(path, request["strings"], request["chats"]),
}))
