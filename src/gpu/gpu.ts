import { BufferPool, cacheCap } from './buffer-pool.js';
import { CommandBatch, type Params, type Workgroups } from './commands.js';
import { acquireDevice, type DeviceOptions } from './device.js';
import { f16ArrayToF32, f32ArrayToF16 } from '../io/half-precision.js';
import { KernelCache, type Kernel } from './kernel.js';
import { quietWait } from './quiet-wait.js';
import type { Specialisation } from './shader-source.js';
import { bytesPerElement, formatShape, numel, Tensor, type DType, type Shape } from './tensor.js';

/**
 * The WebGPU runtime: one device, its buffer pool, compiled kernels and the command batch that
 * every op records into. Ops never wait for the GPU; only read() and sync() do.
 */
export class Gpu {
  readonly pool: BufferPool;
  readonly kernels: KernelCache;
  readonly commands: CommandBatch;
  private readonly refCounts = new Map<GPUBuffer, number>();
  private readonly scopes: Set<Tensor>[] = [];
  private readonly errors: string[] = [];
  private lostMessage: string | null = null;
  /**
   * Whether endPhase() gives the pool's free buffers back. Only without Dawn's sub-allocation does
   * that lower the process's memory; with it, re-creating them raised the peak (bench/README "Memory").
   */
  trimBetweenPhases: boolean;
  /**
   * Dispatches (one bind group each) recorded between garbage collections. Each live bind group
   * holds a descriptor set, one mapping of the process on lavapipe; collecting at the waits after
   * this many bounds a step's mappings to a few times this many (bench/README "Memory").
   */
  collectEvery = DEFAULT_COLLECT_EVERY;
  private dispatchesAtCollection = 0;
  /** Collections run by collectEvery, and the seconds they took (benchmarks report them). */
  collections = 0;
  collectionSeconds = 0;

  private constructor(
    readonly device: GPUDevice,
    readonly adapterName: string,
    readonly isCpuAdapter: boolean,
    readonly suballocation: boolean,
    readonly features: ReadonlySet<string>,
    private readonly instance: GPU,
    private readonly collectGarbage: () => void,
  ) {
    this.kernels = new KernelCache(device);
    this.commands = new CommandBatch(device);
    this.pool = new BufferPool(device, device.limits.maxBufferSize, cacheCap(suballocation), () => this.commands.submit());
    this.trimBetweenPhases = !suballocation;
    device.addEventListener('uncapturederror', (event) => {
      this.errors.push((event as GPUUncapturedErrorEvent).error.message);
    });
    void device.lost.then((info) => {
      if (info.reason === 'destroyed') return;
      this.lostMessage = `WebGPU device lost (${info.reason}): ${info.message}`;
      console.error(this.lostMessage);
    });
  }

  static async create(options: DeviceOptions = {}): Promise<Gpu> {
    const { device, adapterName, isCpuAdapter, suballocation, features, instance, collectGarbage } = await acquireDevice(options);
    return new Gpu(device, adapterName, isCpuAdapter, suballocation, features, instance, collectGarbage);
  }

  get hasF16(): boolean {
    return this.features.has('shader-f16');
  }

  get hasTimestamps(): boolean {
    return this.features.has('timestamp-query');
  }

  private checkAlive(): void {
    if (this.lostMessage) throw new Error(this.lostMessage);
  }

  kernel(name: string, values?: Specialisation): Kernel {
    this.checkAlive();
    return this.kernels.get(name, values);
  }

  /** Records one dispatch; `buffers` bind to @binding(1), (2), … in order (0 is the params block). */
  run(kernel: Kernel, buffers: readonly (Tensor | GPUBufferBinding)[], workgroups: Workgroups, params?: Params): void {
    this.checkAlive();
    const limit = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (workgroups.some((n) => n !== undefined && (n > limit || n < 0 || !Number.isInteger(n)))) {
      throw new Error(`${kernel.label}: workgroup count [${workgroups.join(', ')}] exceeds ${limit} per dimension`);
    }
    if (workgroups.some((n) => n === 0)) return;
    this.commands.dispatch(kernel, buffers.map((b) => (b instanceof Tensor ? b.binding : b)), workgroups, params);
  }

  /** Splits a 1-D launch over x and y so it fits the per-dimension limit; shaders rebuild the index with num_workgroups. */
  grid1d(invocations: number, workgroupSize: number): Workgroups {
    const groups = Math.ceil(invocations / workgroupSize);
    const limit = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (groups <= limit) return [groups, 1];
    const y = Math.ceil(groups / limit);
    return [Math.ceil(groups / y), y];
  }

  // ---- tensors and memory -------------------------------------------------------------------

  /** A tensor of uninitialised values; `minBytes`: its buffer holds at least that many bytes (a fixed-size binding over it). */
  empty(shape: Shape, dtype: DType = 'f32', minBytes = 0): Tensor {
    this.checkAlive();
    if (dtype === 'f16' && !this.hasF16) throw new Error('f16 tensors need the shader-f16 feature, which this adapter lacks');
    const buffer = this.pool.acquire(Math.max(numel(shape) * bytesPerElement(dtype), minBytes));
    this.refCounts.set(buffer, 1);
    return this.track(new Tensor(this, buffer, shape, dtype));
  }

  zeros(shape: Shape, dtype: DType = 'f32'): Tensor {
    const t = this.empty(shape, dtype);
    this.commands.clear(t.buffer, 0, t.binding.size as number);
    return t;
  }

  tensor(data: ArrayLike<number>, shape: Shape, dtype: DType = 'f32'): Tensor {
    if (data.length !== numel(shape)) {
      throw new Error(`tensor: ${data.length} values do not fill shape ${formatShape(shape)} (${numel(shape)} elements)`);
    }
    const t = this.empty(shape, dtype);
    this.write(t, data);
    return t;
  }

  /** Overwrites a tensor's contents from the host, in stream order. */
  write(t: Tensor, data: ArrayLike<number>): void {
    if (data.length !== t.size) throw new Error(`write: ${data.length} values for ${t}`);
    if (t.size === 0) return;
    let host: ArrayBufferView;
    if (t.dtype === 'f16') host = f32ArrayToF16(data);
    else if (t.dtype === 'u32') host = data instanceof Uint32Array ? data : Uint32Array.from(data, checkedU32);
    else host = data instanceof Float32Array ? data : Float32Array.from(data);
    this.commands.upload(t.buffer, 0, host);
  }

  /** Internal: registers a tensor that shares `base`'s storage. */
  adopt(view: Tensor, base: Tensor): Tensor {
    this.refCounts.set(base.buffer, (this.refCounts.get(base.buffer) ?? 0) + 1);
    return this.track(view);
  }

  /** Internal: called by Tensor.dispose(). */
  release(t: Tensor, buffer: GPUBuffer): void {
    for (const scope of this.scopes) scope.delete(t);
    const count = (this.refCounts.get(buffer) ?? 1) - 1;
    if (count > 0) {
      this.refCounts.set(buffer, count);
      return;
    }
    this.refCounts.delete(buffer);
    this.pool.release(buffer);
  }

  private track(t: Tensor): Tensor {
    this.scopes.at(-1)?.add(t);
    return t;
  }

  /** Removes a tensor from every open tidy scope, so it outlives them. */
  keep<T extends Tensor>(t: T): T {
    for (const scope of this.scopes) scope.delete(t);
    return t;
  }

  /**
   * Runs fn and disposes every tensor it created, except those it returns (which move to the
   * enclosing scope) and those passed to keep(). One step of training runs inside one tidy.
   */
  tidy<T>(fn: () => T): T {
    this.scopes.push(new Set());
    let result: T;
    try {
      result = fn();
    } catch (e) {
      this.closeScope(undefined);
      throw e;
    }
    this.closeScope(result);
    return result;
  }

  private closeScope(result: unknown): void {
    const scope = this.scopes.pop()!;
    const survivors = new Set<Tensor>();
    collectTensors(result, survivors);
    for (const t of scope) {
      if (survivors.has(t)) this.scopes.at(-1)?.add(t);
      else t.dispose();
    }
  }

  // ---- synchronisation ----------------------------------------------------------------------

  /** Submits recorded work without waiting for it. */
  flush(): void {
    this.commands.submit();
  }

  private async throwErrors(): Promise<void> {
    const errors = [...(await this.kernels.takeErrors()), ...this.errors.splice(0)];
    if (errors.length) throw new Error(errors.join('\n'));
    this.checkAlive();
  }

  /** Waits for all recorded work; throws shader compile errors and validation errors seen so far. */
  async sync(): Promise<void> {
    this.flush();
    await this.waitFor(this.device.queue.onSubmittedWorkDone());
    this.collectIfDue();
    await this.throwErrors();
  }

  /**
   * Where a caller may wait (e.g. between micro-batches): when collectEvery dispatches were recorded
   * since the last collection, waits for the GPU and collects their bind groups, then makes Dawn
   * reuse their descriptor sets right away. Node releases a collected bind group from a finalizer
   * that runs on a later event-loop turn, and Dawn frees a released set only once the queue has
   * passed a submission made after the release; so: one turn for the finalizers, then an empty
   * submission and a wait, twice (once was not always enough: 5 of 12 runs of the mapping test
   * got their sets back an interval late; twice, 24 of 24 on time, each beside a second copy).
   * Before, the sets came back one or two intervals late depending on the machine's timing: a step
   * of 40 micro-batches on lavapipe peaked at 3.2 and 4.4 intervals' worth of mappings on two
   * machines, now at 2.0 (bench/README "Memory").
   */
  async reclaim(): Promise<void> {
    if (!this.collectionDue) return;
    await this.sync();
    await afterPendingImmediates();
    for (let pass = 0; pass < 2; pass++) {
      this.device.queue.submit([this.device.createCommandEncoder().finish()]);
      await this.waitFor(this.device.queue.onSubmittedWorkDone());
    }
  }

  private get collectionDue(): boolean {
    return this.commands.dispatchCount - this.dispatchesAtCollection >= this.collectEvery;
  }

  /**
   * After a wait: Dawn reuses a bind group's descriptor set once its JS object is collected and the
   * device has passed a submission made after its release (see reclaim).
   */
  private collectIfDue(): void {
    if (!this.collectionDue) return;
    const start = performance.now();
    this.collectGarbage();
    this.collectionSeconds += (performance.now() - start) / 1000;
    this.collections++;
    this.dispatchesAtCollection = this.commands.dispatchCount;
  }

  /** Awaits a promise that settles when GPU work does; on CPU adapters without spinning a core (see quiet-wait.ts). */
  waitFor<T>(pending: Promise<T>): Promise<T> {
    return this.isCpuAdapter ? quietWait(pending) : pending;
  }

  /** Copies a tensor to the host as float32 (f16 widened, u32 converted). One read-back = one wait. */
  async read(t: Tensor): Promise<Float32Array> {
    return (await this.readAll([t]))[0];
  }

  /** Several tensors in one read-back: one staging buffer, one wait (e.g. a step's metrics). */
  async readAll(tensors: readonly Tensor[]): Promise<Float32Array[]> {
    const raws = await this.readBytes(tensors);
    return tensors.map((t, i) => {
      if (t.dtype === 'f16') return f16ArrayToF32(new Uint16Array(raws[i], 0, t.size));
      if (t.dtype === 'u32') return Float32Array.from(new Uint32Array(raws[i], 0, t.size));
      return new Float32Array(raws[i], 0, t.size);
    });
  }

  async readU32(t: Tensor): Promise<Uint32Array> {
    if (t.dtype !== 'u32') throw new Error(`readU32: ${t} is not u32`);
    return new Uint32Array((await this.readBytes([t]))[0], 0, t.size);
  }

  private async readBytes(tensors: readonly Tensor[]): Promise<ArrayBuffer[]> {
    const sizes = tensors.map((t) => Math.ceil(t.byteLength / 4) * 4);
    const total = sizes.reduce((a, b) => a + b, 0);
    if (total === 0) return tensors.map(() => new ArrayBuffer(0));
    const staging = this.commands.createStaging(total, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    let offset = 0;
    tensors.forEach((t, i) => {
      if (sizes[i]) this.commands.copy(t.buffer, 0, staging, offset, sizes[i]);
      offset += sizes[i];
    });
    this.flush();
    try {
      await this.waitFor(staging.mapAsync(GPUMapMode.READ));
      this.collectIfDue();
    } catch (e) {
      this.commands.destroyStaging(staging);
      await this.throwErrors();
      throw e;
    }
    const mapped = staging.getMappedRange();
    offset = 0;
    const raws = sizes.map((size) => mapped.slice(offset, (offset += size)));
    this.commands.destroyStaging(staging);
    await this.throwErrors();
    return raws;
  }

  async readScalar(t: Tensor): Promise<number> {
    if (t.size !== 1) throw new Error(`readScalar: ${t} is not a scalar`);
    return (await this.read(t))[0];
  }

  /** Starts new high-water marks of pool and staging bytes (e.g. per training step). */
  resetMemoryPeaks(): void {
    this.pool.resetPeak();
    this.commands.resetPeak();
  }

  /** Between phases that allocate different shapes (generation, training): the cache of one is dead weight in the other. */
  endPhase(): void {
    if (this.trimBetweenPhases) this.pool.trim();
  }

  destroy(): void {
    this.pool.trim();
    this.device.destroy();
    void this.instance;
  }
}

/** With it a step of `small` at 8 × 4 × 128 with recomputation held 25 650 mappings (limit 65 530); one collection takes 70–95 ms. */
const DEFAULT_COLLECT_EVERY = 4096;

/** Resolves after the immediates already queued (Node runs finalizers of collected native objects from one). */
function afterPendingImmediates(): Promise<void> {
  return new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));
}

function checkedU32(v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`u32 tensor: ${v} is not a u32`);
  return v;
}

/** Tensors reachable from fn's result through arrays and plain objects survive the tidy. */
function collectTensors(tree: unknown, out: Set<Tensor>): void {
  if (tree instanceof Tensor) out.add(tree);
  else if (Array.isArray(tree)) for (const item of tree) collectTensors(item, out);
  else if (tree && typeof tree === 'object' && !(tree instanceof Promise)) for (const item of Object.values(tree)) collectTensors(item, out);
}
