/** Shape and storage type of one tensor, before its data is read. */
export interface TensorInfo {
  readonly name: string;
  /** Outermost dimension first (row-major), as PyTorch and safetensors write shapes. */
  readonly shape: readonly number[];
  /** The storage type, in the file format's own spelling (e.g. "BF16", "Q4_1"). */
  readonly dtype: string;
}

/**
 * Read access to a named collection of tensors (a safetensors file, a sharded checkpoint, a GGUF
 * file seen through Hugging Face names). Tensors are read one at a time, on demand.
 */
export interface TensorReader {
  readonly name: string;
  tensorNames(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  /** The tensor's values widened (or dequantized) to f32, row-major. */
  readFloat32(name: string): Float32Array;
  close(): void;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1);
}
