// Dequantization of ggml block formats to f32, following the block layouts in ggml-common.h and
// the reference dequantizers (ggml-quants.c, gguf-py's quants.py). Intermediate products are all
// exactly representable in f32 (an f16 scale has 11 significant bits, the quants at most 8), so
// computing in doubles and storing into a Float32Array rounds exactly once, as f32 arithmetic does:
// results are bit-identical to gguf-py's.

import { f16ToF32Table } from './half-precision.js';
import type { GgmlType } from './ggml-types.js';

type BlockDecoder = (bytes: Uint8Array, blocks: number, out: Float32Array, f16: Float32Array) => void;

const QK = 32;
const QK_K = 256;

function half(bytes: Uint8Array, offset: number, f16: Float32Array): number {
  return f16[bytes[offset] | (bytes[offset + 1] << 8)];
}

function signedByte(value: number): number {
  return (value << 24) >> 24;
}

const decodeQ4_0: BlockDecoder = (bytes, blocks, out, f16) => {
  for (let b = 0; b < blocks; b++) {
    const base = b * 18;
    const d = half(bytes, base, f16);
    const o = b * QK;
    for (let j = 0; j < 16; j++) {
      const q = bytes[base + 2 + j];
      out[o + j] = ((q & 0x0f) - 8) * d;
      out[o + j + 16] = ((q >> 4) - 8) * d;
    }
  }
};

const decodeQ4_1: BlockDecoder = (bytes, blocks, out, f16) => {
  for (let b = 0; b < blocks; b++) {
    const base = b * 20;
    const d = half(bytes, base, f16);
    const m = half(bytes, base + 2, f16);
    const o = b * QK;
    for (let j = 0; j < 16; j++) {
      const q = bytes[base + 4 + j];
      out[o + j] = (q & 0x0f) * d + m;
      out[o + j + 16] = (q >> 4) * d + m;
    }
  }
};

// Q5: the fifth bit of element j is bit j of a little-endian u32 `qh`.
function fifthBits(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] | (bytes[offset + 1] << 8) | (bytes[offset + 2] << 16) | (bytes[offset + 3] << 24)) >>> 0;
}

const decodeQ5_0: BlockDecoder = (bytes, blocks, out, f16) => {
  for (let b = 0; b < blocks; b++) {
    const base = b * 22;
    const d = half(bytes, base, f16);
    const qh = fifthBits(bytes, base + 2);
    const o = b * QK;
    for (let j = 0; j < 16; j++) {
      const q = bytes[base + 6 + j];
      out[o + j] = (((q & 0x0f) | (((qh >>> j) & 1) << 4)) - 16) * d;
      out[o + j + 16] = (((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * d;
    }
  }
};

const decodeQ5_1: BlockDecoder = (bytes, blocks, out, f16) => {
  for (let b = 0; b < blocks; b++) {
    const base = b * 24;
    const d = half(bytes, base, f16);
    const m = half(bytes, base + 2, f16);
    const qh = fifthBits(bytes, base + 4);
    const o = b * QK;
    for (let j = 0; j < 16; j++) {
      const q = bytes[base + 8 + j];
      out[o + j] = ((q & 0x0f) | (((qh >>> j) & 1) << 4)) * d + m;
      out[o + j + 16] = ((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) * d + m;
    }
  }
};

const decodeQ8_0: BlockDecoder = (bytes, blocks, out, f16) => {
  for (let b = 0; b < blocks; b++) {
    const base = b * 34;
    const d = half(bytes, base, f16);
    const o = b * QK;
    for (let j = 0; j < QK; j++) out[o + j] = signedByte(bytes[base + 2 + j]) * d;
  }
};

const decodeQ2_K: BlockDecoder = (bytes, blocks, out, f16) => {
  // scales[16] | qs[64] | d | dmin; 16 groups of 16 values, 2 bits each.
  for (let b = 0; b < blocks; b++) {
    const base = b * 84;
    const d = half(bytes, base + 80, f16);
    const dmin = half(bytes, base + 82, f16);
    const o = b * QK_K;
    for (let v = 0; v < QK_K; v++) {
      const scale = bytes[base + (v >> 4)];
      const q = (bytes[base + 16 + (v >> 7) * 32 + (v & 31)] >> (2 * ((v >> 5) & 3))) & 3;
      out[o + v] = Math.fround(d * (scale & 0x0f)) * q - Math.fround(dmin * (scale >> 4));
    }
  }
};

const decodeQ3_K: BlockDecoder = (bytes, blocks, out, f16) => {
  // hmask[32] | qs[64] | scales[12] (16 packed 6-bit scales) | d
  const scales = new Float32Array(16);
  for (let b = 0; b < blocks; b++) {
    const base = b * 110;
    const d = half(bytes, base + 108, f16);
    const s = base + 96;
    for (let i = 0; i < 16; i++) {
      const low = (bytes[s + (i & 7)] >> (i < 8 ? 0 : 4)) & 0x0f;
      const high = (bytes[s + 8 + (i & 3)] >> (2 * (i >> 2))) & 3;
      scales[i] = d * ((low | (high << 4)) - 32);
    }
    const o = b * QK_K;
    for (let v = 0; v < QK_K; v++) {
      const low = (bytes[base + 32 + (v >> 7) * 32 + (v & 31)] >> (2 * ((v >> 5) & 3))) & 3;
      // A set hmask bit means "no offset"; a clear one subtracts 4.
      const high = (bytes[base + (v & 31)] >> (v >> 5)) & 1;
      out[o + v] = scales[v >> 4] * (low - (high ? 0 : 4));
    }
  }
};

/** The eight 6-bit (scale, min) pairs of a Q4_K/Q5_K block, packed in 12 bytes at `s`. */
function unpackScaleMins(bytes: Uint8Array, s: number, d: number, dmin: number, scales: Float32Array, mins: Float32Array) {
  for (let j = 0; j < 8; j++) {
    let sc: number;
    let m: number;
    if (j < 4) {
      sc = bytes[s + j] & 63;
      m = bytes[s + j + 4] & 63;
    } else {
      sc = (bytes[s + j + 4] & 0x0f) | ((bytes[s + j - 4] >> 6) << 4);
      m = (bytes[s + j + 4] >> 4) | ((bytes[s + j] >> 6) << 4);
    }
    scales[j] = d * sc;
    mins[j] = dmin * m;
  }
}

const decodeQ4_K: BlockDecoder = (bytes, blocks, out, f16) => {
  // d | dmin | scales[12] | qs[128]; 8 groups of 32 values.
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  for (let b = 0; b < blocks; b++) {
    const base = b * 144;
    unpackScaleMins(bytes, base + 4, half(bytes, base, f16), half(bytes, base + 2, f16), scales, mins);
    const o = b * QK_K;
    for (let v = 0; v < QK_K; v++) {
      const g = v >> 5;
      const q = (bytes[base + 16 + (v >> 6) * 32 + (v & 31)] >> (4 * (g & 1))) & 0x0f;
      out[o + v] = scales[g] * q - mins[g];
    }
  }
};

const decodeQ5_K: BlockDecoder = (bytes, blocks, out, f16) => {
  // d | dmin | scales[12] | qh[32] | qs[128]
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  for (let b = 0; b < blocks; b++) {
    const base = b * 176;
    unpackScaleMins(bytes, base + 4, half(bytes, base, f16), half(bytes, base + 2, f16), scales, mins);
    const o = b * QK_K;
    for (let v = 0; v < QK_K; v++) {
      const g = v >> 5;
      const low = (bytes[base + 48 + (v >> 6) * 32 + (v & 31)] >> (4 * (g & 1))) & 0x0f;
      const high = (bytes[base + 16 + (v & 31)] >> g) & 1;
      out[o + v] = scales[g] * (low | (high << 4)) - mins[g];
    }
  }
};

const decodeQ6_K: BlockDecoder = (bytes, blocks, out, f16) => {
  // ql[128] | qh[64] | scales[16] (int8) | d; 16 groups of 16 values, 6 bits each.
  for (let b = 0; b < blocks; b++) {
    const base = b * 210;
    const d = half(bytes, base + 208, f16);
    const o = b * QK_K;
    for (let v = 0; v < QK_K; v++) {
      const halfIndex = v >> 7;
      const within = v & 127;
      const low = (bytes[base + halfIndex * 64 + (within & 63)] >> (4 * (within >> 6))) & 0x0f;
      const high = (bytes[base + 128 + halfIndex * 32 + (within & 31)] >> (2 * (within >> 5))) & 3;
      out[o + v] = Math.fround(d * signedByte(bytes[base + 192 + (v >> 4)])) * ((low | (high << 4)) - 32);
    }
  }
};

function elementwise(read: (view: DataView, offset: number) => number, size: number): BlockDecoder {
  return (bytes, count, out) => {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < count; i++) out[i] = read(view, i * size);
  };
}

const DECODERS: ReadonlyMap<string, BlockDecoder> = new Map([
  ['F32', elementwise((v, o) => v.getFloat32(o, true), 4)],
  ['F16', (bytes, count, out, f16) => {
    for (let i = 0; i < count; i++) out[i] = half(bytes, 2 * i, f16);
  }],
  ['BF16', (bytes, count, out) => {
    // Widening bf16 is a 16-bit shift of the bits: do it on the integer view, not through floats.
    const bits = new Uint32Array(out.buffer, out.byteOffset, count);
    for (let i = 0; i < count; i++) bits[i] = (bytes[2 * i] | (bytes[2 * i + 1] << 8)) << 16;
  }],
  ['F64', elementwise((v, o) => v.getFloat64(o, true), 8)],
  ['I8', elementwise((v, o) => v.getInt8(o), 1)],
  ['I16', elementwise((v, o) => v.getInt16(o, true), 2)],
  ['I32', elementwise((v, o) => v.getInt32(o, true), 4)],
  ['Q4_0', decodeQ4_0],
  ['Q4_1', decodeQ4_1],
  ['Q5_0', decodeQ5_0],
  ['Q5_1', decodeQ5_1],
  ['Q8_0', decodeQ8_0],
  ['Q2_K', decodeQ2_K],
  ['Q3_K', decodeQ3_K],
  ['Q4_K', decodeQ4_K],
  ['Q5_K', decodeQ5_K],
  ['Q6_K', decodeQ6_K],
]);

export const DEQUANTIZABLE_TYPES: readonly string[] = [...DECODERS.keys()];

/**
 * Dequantizes `elements` values of `type` from `bytes` (a whole number of blocks). Throws for a
 * type without a decoder; `what` names the tensor in that message.
 */
export function dequantize(type: GgmlType, bytes: Uint8Array, elements: number, what: string): Float32Array {
  const decode = DECODERS.get(type.name);
  if (!decode) {
    throw new Error(
      `${what}: cannot dequantize ggml type ${type.name} (type ${type.id}); supported: ${DEQUANTIZABLE_TYPES.join(', ')}`,
    );
  }
  const out = new Float32Array(elements);
  decode(bytes, type.blockSize === 1 ? elements : elements / type.blockSize, out, f16ToF32Table());
  return out;
}
