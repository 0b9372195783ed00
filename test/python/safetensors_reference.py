"""Reference side of test/io-safetensors.test.ts, using the `safetensors` package.

  write DIR   write DIR/reference.safetensors holding one tensor of every dtype, and print a JSON
              description of it (dtype, shape, raw bytes and f32 values in base64).
  check FILE  load FILE with safetensors (torch and numpy back ends) and print the same JSON
              description, so the caller can compare it with what it wrote.
"""

import base64
import json
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import load_file as load_numpy
from safetensors.torch import save_file

TORCH_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "U64": torch.uint64, "I32": torch.int32, "U32": torch.uint32,
    "I16": torch.int16, "U16": torch.uint16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}
DTYPE_NAMES = {v: k for k, v in TORCH_DTYPES.items()}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def raw_bytes(t: torch.Tensor) -> bytes:
    t = t.contiguous().view(-1)
    return (t.to(torch.uint8) if t.dtype == torch.bool else t.view(torch.uint8)).numpy().tobytes()


def describe(tensors: dict, metadata) -> dict:
    out = {}
    for name, t in tensors.items():
        out[name] = {
            "dtype": DTYPE_NAMES[t.dtype],
            "shape": list(t.shape),
            "bytes": b64(raw_bytes(t)),
            "f32": b64(t.to(torch.float32).contiguous().numpy().tobytes()),
        }
    return {"tensors": out, "metadata": metadata}


def reference_tensors() -> dict:
    g = torch.Generator().manual_seed(0)
    floats = torch.randn(3, 5, generator=g, dtype=torch.float64) * 100
    floats[0, :4] = torch.tensor([0.0, -0.0, 65504.0, 1e-7], dtype=torch.float64)
    ints = torch.randint(-120, 120, (2, 3, 4), generator=g)
    tensors = {}
    for name, dtype in TORCH_DTYPES.items():
        if dtype.is_floating_point:
            tensors[f"float.{name}"] = floats.to(dtype)
        elif dtype == torch.bool:
            tensors["mask.BOOL"] = ints > 0
        elif name.startswith("U"):
            tensors[f"int.{name}"] = ints.abs().to(dtype)
        else:
            tensors[f"int.{name}"] = ints.to(dtype)
    tensors["edge.empty"] = torch.zeros(0, 7, dtype=torch.float32)
    tensors["edge.scalar"] = torch.tensor(3.5, dtype=torch.float32)
    return tensors


def main() -> None:
    command, path = sys.argv[1], sys.argv[2]
    if command == "write":
        tensors = reference_tensors()
        metadata = {"format": "pt", "note": "written by safetensors.torch"}
        save_file(tensors, f"{path}/reference.safetensors", metadata=metadata)
        print(json.dumps(describe(tensors, metadata)))
    elif command == "check":
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata()
            tensors = {name: f.get_tensor(name) for name in f.keys()}
        # numpy has no bfloat16 and refuses a whole file holding one; other files must load there
        # too, with the same bytes as through torch.
        numpy_checked = all(t.dtype != torch.bfloat16 for t in tensors.values())
        if numpy_checked:
            for name, array in load_numpy(path).items():
                torch_bytes = raw_bytes(tensors[name])
                assert np.ascontiguousarray(array).tobytes() == torch_bytes, f"numpy and torch disagree on {name}"
        print(json.dumps(describe(tensors, metadata) | {"numpy_checked": numpy_checked}))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
