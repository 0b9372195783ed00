import { loadShader, shaderPath, specialise, type Specialisation } from './shader-source.js';

/** A compiled compute pipeline plus what dispatch needs to bind it. */
export interface Kernel {
  readonly label: string;
  readonly pipeline: GPUComputePipeline;
  /** The pipeline's bind group layout, asked for once: each getBindGroupLayout call crosses into Dawn and wraps a new object. */
  readonly layout: GPUBindGroupLayout;
  /** Whether binding 0 is a `var<uniform>` params struct (all storage buffers then start at 1). */
  readonly hasParams: boolean;
}

/** The specialisation of a kernel's `alias V` for `width` f32 values per invocation. */
export const vectorOf = (width: 1 | 4): { V: string } => ({ V: width === 4 ? 'vec4<f32>' : 'f32' });

/**
 * How an elementwise kernel declaring `alias V` takes `count` f32 values: four per invocation
 * (V = vec4<f32>, one 16-byte access) when count is a multiple of 4, else one. lavapipe performs a
 * storage access lane by lane, so a vec4 access costs about what an f32 one does.
 */
export function elementVectors(count: number): { values: { V: string }; invocations: number; width: 1 | 4 } {
  const width = count % 4 === 0 ? 4 : 1;
  return { values: vectorOf(width), invocations: count / width, width };
}

/**
 * Compiles shaders/NAME.wgsl on first use and caches the pipeline per specialisation.
 * Compilation errors arrive asynchronously from the device; they are collected with the shader's
 * file and line and thrown at the next sync point (see Gpu.sync).
 */
export class KernelCache {
  private readonly kernels = new Map<string, Kernel>();
  private readonly pendingChecks: Promise<string | null>[] = [];
  private readonly compiledNames = new Set<string>();

  constructor(private readonly device: GPUDevice) {}

  get(name: string, values: Specialisation = {}): Kernel {
    const key = name + JSON.stringify(values);
    let kernel = this.kernels.get(key);
    if (!kernel) {
      kernel = this.compile(name, specialise(name, loadShader(name), values), values);
      this.kernels.set(key, kernel);
      this.compiledNames.add(name);
    }
    return kernel;
  }

  private compile(name: string, code: string, values: Specialisation): Kernel {
    const label = Object.keys(values).length ? `${name}${JSON.stringify(values)}` : name;
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ label, code });
    const pipeline = this.device.createComputePipeline({ label, layout: 'auto', compute: { module, entryPoint: 'main' } });
    const scope = this.device.popErrorScope();
    this.pendingChecks.push(this.describeErrors(name, label, module, scope));
    return { label, pipeline, layout: pipeline.getBindGroupLayout(0), hasParams: /var\s*<\s*uniform\s*>/.test(code) };
  }

  private async describeErrors(name: string, label: string, module: GPUShaderModule, scope: Promise<GPUError | null>): Promise<string | null> {
    const [info, error] = await Promise.all([module.getCompilationInfo(), scope]);
    const lines = info.messages
      .filter((m) => m.type === 'error')
      .map((m) => `${shaderPath(name)}:${m.lineNum}:${m.linePos}: ${m.message}`);
    if (lines.length) return `WGSL compile error in shader '${label}':\n  ${lines.join('\n  ')}`;
    if (error) return `pipeline creation failed for shader '${label}' (${shaderPath(name)}): ${error.message}`;
    return null;
  }

  /** Names of the shaders compiled so far (any specialisation). */
  compiledShaders(): ReadonlySet<string> {
    return this.compiledNames;
  }

  /** Resolves to the errors of every compilation started since the last call. */
  async takeErrors(): Promise<string[]> {
    const checks = this.pendingChecks.splice(0);
    return (await Promise.all(checks)).filter((e): e is string => e !== null);
  }
}
