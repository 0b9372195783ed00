import type { Tensor } from '../gpu/tensor.js';
import { formatShape } from '../gpu/tensor.js';

const WG = 256;

export interface AdamWOptions {
  lr: number;
  /** (β1, β2); torch's default (0.9, 0.999). */
  betas?: readonly [number, number];
  /** Added outside the square root, as torch does; default 1e-8. */
  eps?: number;
  /** Decoupled: each step multiplies the parameter by 1 − lr·weightDecay; default 0.01 (torch's). */
  weightDecay?: number;
}

/** Optimizer state on the host, for checkpoints; entries follow the order of the parameters. */
export interface AdamWState {
  /** Steps taken per parameter (a parameter without a gradient at a step is not stepped, as in torch). */
  steps: number[];
  /** First moments (exp_avg). */
  m: Float32Array[];
  /** Second moments (exp_avg_sq). */
  v: Float32Array[];
}

/**
 * torch.optim.AdamW on the GPU: one in-place kernel per parameter, reading `param.grad`. The
 * moments are zero-initialised at construction and live until dispose().
 */
export class AdamW {
  readonly params: readonly Tensor[];
  /** The base learning rate; step(lr) overrides it for one step (schedules). */
  lr: number;
  readonly betas: readonly [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  private readonly m: Tensor[];
  private readonly v: Tensor[];
  private readonly steps: number[];

  constructor(params: readonly Tensor[], options: AdamWOptions) {
    const { lr, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0.01 } = options;
    for (const [name, value] of Object.entries({ lr, beta1: betas[0], beta2: betas[1], eps, weightDecay })) {
      if (!Number.isFinite(value) || value < 0) throw new Error(`AdamW: ${name} must be a finite non-negative number, got ${value}`);
    }
    if (betas[0] >= 1 || betas[1] >= 1) throw new Error(`AdamW: betas must be below 1, got (${betas[0]}, ${betas[1]})`);
    for (const p of params) if (p.dtype !== 'f32') throw new Error(`AdamW: parameters must be f32, got ${p}`);
    this.params = [...params];
    this.lr = lr;
    this.betas = betas;
    this.eps = eps;
    this.weightDecay = weightDecay;
    // keep(): the moments must outlive any tidy() the optimizer happens to be built in.
    this.m = params.map((p) => p.gpu.keep(p.gpu.zeros(p.shape)));
    this.v = params.map((p) => p.gpu.keep(p.gpu.zeros(p.shape)));
    this.steps = params.map(() => 0);
  }

  /** Updates every parameter that has a gradient, in place; `lr` replaces this.lr for this step. */
  step(lr = this.lr): void {
    if (!Number.isFinite(lr) || lr < 0) throw new Error(`AdamW.step: lr must be a finite non-negative number, got ${lr}`);
    const [beta1, beta2] = this.betas;
    this.params.forEach((param, i) => {
      const grad = param.grad;
      if (!grad) return;
      if (grad.size !== param.size || grad.dtype !== 'f32') {
        throw new Error(`AdamW.step: gradient ${formatShape(grad.shape)} ${grad.dtype} does not match parameter ${formatShape(param.shape)} f32`);
      }
      const step = ++this.steps[i];
      const gpu = param.gpu;
      // Host scalars in float64 first, rounded to f32 once, as torch's Python floats are.
      gpu.run(gpu.kernel('adamw', { WG }), [param, grad, this.m[i], this.v[i]], gpu.grid1d(param.size, WG), {
        u32: [param.size],
        f32: [1 - lr * this.weightDecay, 1 - beta1, beta2, 1 - beta2, lr / (1 - beta1 ** step), Math.sqrt(1 - beta2 ** step), this.eps],
      });
    });
  }

  /** The moment tensors (for memory accounting). */
  stateTensors(): Tensor[] {
    return [...this.m, ...this.v];
  }

  /** Drops every parameter's gradient (torch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Copies the moments and step counts to the host (one read-back per tensor). */
  async exportState(): Promise<AdamWState> {
    return {
      steps: [...this.steps],
      m: await Promise.all(this.m.map((t) => t.toArray())),
      v: await Promise.all(this.v.map((t) => t.toArray())),
    };
  }

  /** Restores state saved by exportState() for the same parameters in the same order. */
  importState(state: AdamWState): void {
    const count = this.params.length;
    if (state.steps.length !== count || state.m.length !== count || state.v.length !== count) {
      throw new Error(`AdamW.importState: state for ${state.steps.length} parameters (${state.m.length} m, ${state.v.length} v), optimizer has ${count}`);
    }
    this.params.forEach((param, i) => {
      if (state.m[i].length !== param.size || state.v[i].length !== param.size) {
        throw new Error(`AdamW.importState: moments of ${state.m[i].length}/${state.v[i].length} values for parameter ${i} ${formatShape(param.shape)}`);
      }
      const step = state.steps[i];
      if (!Number.isInteger(step) || step < 0) throw new Error(`AdamW.importState: step ${step} of parameter ${i} is not a count`);
      param.gpu.write(this.m[i], state.m[i]);
      param.gpu.write(this.v[i], state.v[i]);
      this.steps[i] = step;
    });
  }

  /** Frees the moments. */
  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}
