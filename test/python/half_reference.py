"""Reference for test/io-half-precision.test.ts: reads little-endian f32 values (base64) on stdin
and prints their f16 bits (numpy) and bfloat16 bits (torch), both rounded to nearest even."""

import base64
import json
import sys

import numpy as np
import torch

values = np.frombuffer(base64.b64decode(sys.stdin.read()), dtype=np.float32)
f16 = values.astype(np.float16).view(np.uint16)
bf16 = torch.from_numpy(values.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
print(json.dumps({"f16": f16.tolist(), "bf16": bf16.tolist()}))
