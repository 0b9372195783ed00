"""Reference side of test/io-gguf.test.ts: writes GGUF files with gguf-py's GGUFWriter and prints,
as JSON, what a correct reader must find in them (values dequantized by gguf-py itself).

  quant DIR   DIR/quant.gguf: metadata of every value type, one tensor of every type we dequantize
              (quantized by gguf.quants.quantize where gguf-py can, random blocks otherwise), an
              IQ2_XXS tensor we cannot dequantize, and a 64-byte alignment.
  llama DIR   DIR/llama.gguf: a tiny Llama checkpoint with llama.cpp's Q/K row permutation, plus
              the Hugging Face tensors and config transformers derives from it.
  model DIR   DIR/model.gguf: a small Llama as llama.cpp writes a chat model (quantized weights,
              tied output, a trained byte-level BPE tokenizer with SmolLM2's digit splitting and a
              chat template) for loading and training end to end; prints its path.
"""

import base64
import json
import sys

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V
from gguf import GGUFWriter
from gguf.quants import dequantize, quantize

rng = np.random.default_rng(1234)


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.float32).tobytes()).decode()


# Where the f16 scale fields sit in each K-quant block, so random blocks get finite, modest scales.
K_QUANT_HALF_FIELDS = {Q.Q2_K: (84, [80, 82]), Q.Q3_K: (110, [108]), Q.Q4_K: (144, [0, 2]), Q.Q5_K: (176, [0, 2]), Q.Q6_K: (210, [208])}


def random_k_blocks(qtype: Q, n_blocks: int) -> np.ndarray:
    size, half_fields = K_QUANT_HALF_FIELDS[qtype]
    blocks = rng.integers(0, 256, (n_blocks, size), dtype=np.uint8)
    for offset in half_fields:
        scales = rng.uniform(-0.05, 0.05, n_blocks).astype(np.float16).view(np.uint8).reshape(n_blocks, 2)
        blocks[:, offset:offset + 2] = scales
    return blocks


def write_quant(directory: str) -> dict:
    path = f"{directory}/quant.gguf"
    writer = GGUFWriter(path, "test-arch")
    writer.add_custom_alignment(64)
    metadata = {
        "t.u8": (V.UINT8, 200), "t.i8": (V.INT8, -100), "t.u16": (V.UINT16, 60000), "t.i16": (V.INT16, -30000),
        "t.u32": (V.UINT32, 4_000_000_000), "t.i32": (V.INT32, -2_000_000_000), "t.f32": (V.FLOAT32, 0.25),
        "t.u64": (V.UINT64, 2**53 - 1), "t.i64": (V.INT64, -(2**40)), "t.f64": (V.FLOAT64, 1e-300),
        "t.bool": (V.BOOL, True), "t.string": (V.STRING, "héllo ✓ 日本"),
    }
    for key, (vtype, value) in metadata.items():
        writer.add_key_value(key, value, vtype)
    writer.add_key_value("t.array_i32", [1, -2, 3], V.ARRAY, sub_type=V.INT32)
    writer.add_key_value("t.array_f32", [0.5, -1.5], V.ARRAY, sub_type=V.FLOAT32)
    writer.add_key_value("t.array_string", ["a", "", "ü b"], V.ARRAY, sub_type=V.STRING)
    writer.add_key_value("t.array_bool", [True, False], V.ARRAY, sub_type=V.BOOL)

    tensors = {}

    def add(name: str, stored: np.ndarray, qtype: Q, expected: np.ndarray) -> None:
        writer.add_tensor(name, stored, raw_dtype=qtype)
        tensors[name] = {"type": qtype.name, "shape": list(expected.shape), "f32": b64(expected)}

    values = rng.standard_normal((4, 256)).astype(np.float32)
    values[0, :8] = [0.0, -0.0, 1.0, -1.0, 100.0, 1e-3, 3.0, -7.5]
    for qtype in (Q.F32, Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0):
        stored = quantize(values, qtype)
        add(f"{qtype.name.lower()}.weight", stored, qtype, dequantize(stored, qtype))
    for qtype in K_QUANT_HALF_FIELDS:
        stored = random_k_blocks(qtype, 6).reshape(3, -1)
        add(f"{qtype.name.lower()}.weight", stored, qtype, dequantize(stored, qtype))
    three_d = rng.standard_normal((2, 3, 64)).astype(np.float32)
    add("three_d.q8_0", quantize(three_d, Q.Q8_0), Q.Q8_0, dequantize(quantize(three_d, Q.Q8_0), Q.Q8_0))
    ints = rng.integers(-100, 100, (5, 7))
    for dtype, qtype in ((np.int8, Q.I8), (np.int16, Q.I16), (np.int32, Q.I32), (np.float64, Q.F64)):
        add(f"plain.{qtype.name.lower()}", ints.astype(dtype), qtype, ints.astype(np.float32))
    writer.add_tensor("iq2_xxs.weight", rng.integers(0, 256, (2, 66), dtype=np.uint8), raw_dtype=Q.IQ2_XXS)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    described = {key: {"type": vtype.name, "value": value} for key, (vtype, value) in metadata.items()}
    described["t.array_i32"] = {"type": "ARRAY", "element_type": "INT32", "value": [1, -2, 3]}
    described["t.array_f32"] = {"type": "ARRAY", "element_type": "FLOAT32", "value": [0.5, -1.5]}
    described["t.array_string"] = {"type": "ARRAY", "element_type": "STRING", "value": ["a", "", "ü b"]}
    described["t.array_bool"] = {"type": "ARRAY", "element_type": "BOOL", "value": [True, False]}
    described["general.alignment"] = {"type": "UINT32", "value": 64}
    return {"path": path, "metadata": described, "tensors": tensors}


LLAMA = {"hidden": 64, "heads": 4, "kv_heads": 2, "layers": 2, "ffn": 96, "vocab": 40}


def llama_cpp_permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """What llama.cpp's convert_hf_to_gguf.py does to q_proj/k_proj rows (LlamaModel.permute)."""
    return weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def add_llama_hparams(writer: GGUFWriter, c: dict, vocab: int) -> None:
    writer.add_block_count(c["layers"])
    writer.add_context_length(2048)
    writer.add_embedding_length(c["hidden"])
    writer.add_feed_forward_length(c["ffn"])
    writer.add_head_count(c["heads"])
    writer.add_head_count_kv(c["kv_heads"])
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(c["hidden"] // c["heads"])
    writer.add_vocab_size(vocab)


def write_llama(directory: str) -> dict:
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor, load_gguf_checkpoint

    c = LLAMA
    head_dim = c["hidden"] // c["heads"]
    path = f"{directory}/llama.gguf"
    writer = GGUFWriter(path, "llama")
    add_llama_hparams(writer, c, c["vocab"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)

    hf = {}  # HF name -> HF-layout f32 values (what a correct reader must return)
    processor = LlamaTensorProcessor(config={"num_attention_heads": c["heads"], "num_key_value_heads": c["kv_heads"]})

    def add(gguf_name: str, hf_name: str, hf_values: np.ndarray, n_head: int | None = None, qtype: Q = Q.F32) -> None:
        stored_values = llama_cpp_permute(hf_values, n_head) if n_head else hf_values
        stored = quantize(stored_values, qtype)
        writer.add_tensor(gguf_name, stored, raw_dtype=qtype)
        read_back = dequantize(stored, qtype)
        # transformers' own inverse of the permutation, applied to exactly what the file holds.
        hf[hf_name] = {"shape": list(hf_values.shape), "f32": b64(processor.process(read_back, gguf_name).weights)}
        if n_head and qtype == Q.F32:
            assert np.array_equal(processor.process(read_back, gguf_name).weights, hf_values)

    def normal(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    add("token_embd.weight", "model.embed_tokens.weight", normal(c["vocab"], c["hidden"]), qtype=Q.Q8_0)
    for i in range(c["layers"]):
        p, h = f"blk.{i}.", f"model.layers.{i}."
        add(p + "attn_norm.weight", h + "input_layernorm.weight", normal(c["hidden"]))
        add(p + "attn_q.weight", h + "self_attn.q_proj.weight", normal(c["hidden"], c["hidden"]), c["heads"], Q.Q4_1 if i else Q.F32)
        add(p + "attn_k.weight", h + "self_attn.k_proj.weight", normal(c["kv_heads"] * head_dim, c["hidden"]), c["kv_heads"])
        add(p + "attn_v.weight", h + "self_attn.v_proj.weight", normal(c["kv_heads"] * head_dim, c["hidden"]))
        add(p + "attn_output.weight", h + "self_attn.o_proj.weight", normal(c["hidden"], c["hidden"]), qtype=Q.Q4_0)
        add(p + "ffn_norm.weight", h + "post_attention_layernorm.weight", normal(c["hidden"]))
        add(p + "ffn_gate.weight", h + "mlp.gate_proj.weight", normal(c["ffn"], c["hidden"]))
        add(p + "ffn_up.weight", h + "mlp.up_proj.weight", normal(c["ffn"], c["hidden"]))
        add(p + "ffn_down.weight", h + "mlp.down_proj.weight", normal(c["hidden"], c["ffn"]))
    add("output_norm.weight", "model.norm.weight", normal(c["hidden"]))
    add("output.weight", "lm_head.weight", normal(c["vocab"], c["hidden"]))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    config = load_gguf_checkpoint(path, return_tensors=False)["config"]
    return {"path": path, "tensors": hf, "config": config}


def write_model(directory: str) -> dict:
    from make_tokenizer_gguf import add_tokenizer, train

    c = {"hidden": 64, "heads": 4, "kv_heads": 2, "layers": 2, "ffn": 96}
    head_dim = c["hidden"] // c["heads"]
    path = f"{directory}/model.gguf"
    writer = GGUFWriter(path, "llama")
    tokens = add_tokenizer(writer, train(split_digits=True), "smollm", add_bos=False)
    add_llama_hparams(writer, c, len(tokens))

    def add(name: str, shape: tuple[int, ...], qtype: Q, n_head: int | None = None) -> None:
        # Norm weights near 1 and projections at an initialisation's scale keep the logits modest.
        values = (1 + 0.1 * rng.standard_normal(shape) if len(shape) == 1 else 0.05 * rng.standard_normal(shape)).astype(np.float32)
        writer.add_tensor(name, quantize(llama_cpp_permute(values, n_head) if n_head else values, qtype), raw_dtype=qtype)

    # The quantization mix of a Q4_1 file: Q8_0 embedding (tied: no output.weight), Q4_1 projections, f32 norms.
    add("token_embd.weight", (len(tokens), c["hidden"]), Q.Q8_0)
    for i in range(c["layers"]):
        p = f"blk.{i}."
        add(p + "attn_norm.weight", (c["hidden"],), Q.F32)
        add(p + "attn_q.weight", (c["hidden"], c["hidden"]), Q.Q4_1, c["heads"])
        add(p + "attn_k.weight", (c["kv_heads"] * head_dim, c["hidden"]), Q.Q4_1, c["kv_heads"])
        add(p + "attn_v.weight", (c["kv_heads"] * head_dim, c["hidden"]), Q.Q4_1)
        add(p + "attn_output.weight", (c["hidden"], c["hidden"]), Q.Q4_1)
        add(p + "ffn_norm.weight", (c["hidden"],), Q.F32)
        add(p + "ffn_gate.weight", (c["ffn"], c["hidden"]), Q.Q4_1)
        add(p + "ffn_up.weight", (c["ffn"], c["hidden"]), Q.Q4_1)
        add(p + "ffn_down.weight", (c["hidden"], c["ffn"]), Q.Q4_1)
    add("output_norm.weight", (c["hidden"],), Q.F32)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {"path": path}


def main() -> None:
    command, directory = sys.argv[1], sys.argv[2]
    result = {"quant": write_quant, "llama": write_llama, "model": write_model}[command](directory)
    print(json.dumps(result, default=float))


if __name__ == "__main__":
    main()
