import type { Gpu } from './gpu.js';

/** f32 for activations and trainable weights, f16 for frozen weights, u32 for token ids and indices. */
export type DType = 'f32' | 'f16' | 'u32';
export type Shape = readonly number[];

export const bytesPerElement = (dtype: DType): number => (dtype === 'f16' ? 2 : 4);

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** What autograd (src/autograd) remembers about the op that produced a tensor. */
export interface GradNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /**
   * Given dL/d(output), returns dL/d(input) for each input (null where no gradient is needed).
   * `into[i]`, where not null, is input i's .grad (a parameter's, from an earlier backward): the op
   * may add its gradient there itself, e.g. with an accumulating product, and return null for it.
   */
  backward(gradOutput: Tensor, into?: readonly (Tensor | null)[]): readonly (Tensor | null)[];
}

/** The node shared by the several outputs of one op (a recomputed decoder layer: hidden states, keys, values). */
export interface MultiOutputGradNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  readonly outputs: readonly Tensor[];
  /** Given dL/d(output) for each output (null where none reached it), returns dL/d(input) for each input. */
  backwardAll(gradOutputs: readonly (Tensor | null)[]): readonly (Tensor | null)[];
}

let nextId = 0;

/**
 * A GPU buffer with a shape and dtype (row-major, contiguous). Buffers come from the Gpu's pool
 * and go back to it on dispose(); use gpu.tidy() to dispose the temporaries of a step at once.
 */
export class Tensor {
  /** Creation order; autograd runs backward in decreasing id order. */
  readonly id = nextId++;
  requiresGrad = false;
  grad: Tensor | null = null;
  /** The op that produced this tensor, when autograd recorded it. */
  node: GradNode | MultiOutputGradNode | null = null;
  private released = false;

  constructor(
    readonly gpu: Gpu,
    private readonly storage: GPUBuffer,
    readonly shape: Shape,
    readonly dtype: DType,
  ) {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new Error(`invalid tensor shape ${formatShape(shape)}`);
    }
  }

  get size(): number {
    return numel(this.shape);
  }

  get byteLength(): number {
    return this.size * bytesPerElement(this.dtype);
  }

  get disposed(): boolean {
    return this.released;
  }

  get buffer(): GPUBuffer {
    if (this.released) throw new Error(`tensor #${this.id} ${formatShape(this.shape)} was used after dispose()`);
    return this.storage;
  }

  /** The binding an op passes to a shader (storage bindings must be a multiple of 4 bytes). */
  get binding(): GPUBufferBinding {
    return { buffer: this.buffer, offset: 0, size: Math.max(4, Math.ceil(this.byteLength / 4) * 4) };
  }

  /**
   * The first `rows` entries along the outermost axis, sharing this tensor's storage (a buffer
   * larger than the shape needs; nothing is copied). Not differentiable.
   */
  leadingRows(rows: number): Tensor {
    if (!Number.isInteger(rows) || rows < 0 || rows > this.shape[0]) {
      throw new Error(`leadingRows: cannot take ${rows} rows of ${formatShape(this.shape)}`);
    }
    return this.gpu.adopt(new Tensor(this.gpu, this.buffer, [rows, ...this.shape.slice(1)], this.dtype), this);
  }

  dispose(): void {
    if (this.released) return;
    this.released = true;
    this.gpu.release(this, this.storage);
  }

  async toArray(): Promise<Float32Array> {
    return this.gpu.read(this);
  }

  toString(): string {
    return `Tensor#${this.id}(${formatShape(this.shape)}, ${this.dtype})`;
  }
}
