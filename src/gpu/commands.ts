import type { Kernel } from './kernel.js';
import type { KernelProfiler } from './profiler.js';

export type Workgroups = readonly [number, number?, number?];

/** A uniform params block: u32 fields first, then f32 fields, each 4 bytes, in declaration order. */
export interface Params {
  u32?: readonly number[];
  f32?: readonly number[];
}

const ARENA_SLOTS = 4096;
/**
 * Bind groups kept for reuse. lavapipe holds a mapping of its device memory per live descriptor
 * set (test/bind-group-reclaim.test.ts), so the cache stays far below the process's map limit.
 */
const BIND_GROUP_CACHE = 1024;
/** Uploads recorded past this many bytes are submitted, so their staging buffers can be freed. */
const MAX_PENDING_UPLOAD_BYTES = 64 * 2 ** 20;

/**
 * Records dispatches into one open compute pass and submits them in batches, so a training step
 * is a handful of queue submissions. Uniform params of a batch live in one arena buffer that is
 * written once per submit; dispatches are ordered by WebGPU, so reading a buffer in one dispatch
 * and overwriting it in the next is safe without extra barriers.
 */
export class CommandBatch {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private readonly slot: number;
  private readonly arenaHost: ArrayBuffer;
  private arena: GPUBuffer;
  private slotsUsed = 0;
  private readonly stagingToDestroy: GPUBuffer[] = [];
  /** Bytes of uploads recorded since the last submit. */
  private uploadBytes = 0;
  /** Bytes in host-visible staging buffers (uploads not yet submitted, read-backs not yet mapped). */
  stagingBytes = 0;
  /** High-water mark of stagingBytes since the last resetPeak(). */
  peakStagingBytes = 0;
  /** Dispatches recorded since creation; a cheap counter for tests and benchmarks. */
  dispatchCount = 0;
  submitCount = 0;
  /** When set, each dispatch is timed on its own (see KernelProfiler). */
  profiler: KernelProfiler | null = null;
  /** Dispatches that reused a bind group of an earlier one (same layout, params slot and bindings). */
  bindGroupHits = 0;
  /** Whether bind groups are kept for reuse (default); false creates one per dispatch, to measure what reuse saves. */
  reuseBindGroups = true;
  /**
   * Bind groups by layout, params slot and bindings, least recently used first. Creating one costs
   * ~40 µs of host time (Dawn validates it), more than the rest of recording its dispatch, and the
   * GPU idles while a decode step is recorded; consecutive decode steps bind the same pooled
   * buffers in the same order, their params in the same slots.
   */
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly ids = new WeakMap<object, number>();
  private nextId = 0;

  constructor(private readonly device: GPUDevice) {
    this.slot = Math.max(256, device.limits.minUniformBufferOffsetAlignment);
    this.arenaHost = new ArrayBuffer(this.slot * ARENA_SLOTS);
    this.arena = this.newArena();
  }

  private newArena(): GPUBuffer {
    return this.device.createBuffer({ size: this.arenaHost.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  }

  private currentEncoder(): GPUCommandEncoder {
    return (this.encoder ??= this.device.createCommandEncoder());
  }

  private currentPass(): GPUComputePassEncoder {
    return (this.pass ??= this.currentEncoder().beginComputePass());
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  dispatch(kernel: Kernel, buffers: readonly GPUBufferBinding[], workgroups: Workgroups, params?: Params): void {
    if (this.slotsUsed === ARENA_SLOTS || this.profiler?.full) this.submit();
    const entries: GPUBindGroupEntry[] = [];
    if (kernel.hasParams) {
      const offset = this.slotsUsed++ * this.slot;
      const u = params?.u32 ?? [];
      const f = params?.f32 ?? [];
      const words = u.length + f.length;
      if (words * 4 > this.slot) throw new Error(`${kernel.label}: ${words} params exceed one ${this.slot}-byte uniform slot`);
      new Uint32Array(this.arenaHost, offset, u.length).set(u);
      new Float32Array(this.arenaHost, offset + u.length * 4, f.length).set(f);
      entries.push({ binding: 0, resource: { buffer: this.arena, offset, size: Math.max(16, Math.ceil((words * 4) / 16) * 16) } });
    } else if (params) {
      throw new Error(`${kernel.label}: params given but the shader declares no var<uniform>`);
    }
    buffers.forEach((resource, i) => entries.push({ binding: i + 1, resource }));
    const bindGroup = this.bindGroup(kernel.layout, entries);
    if (this.profiler) {
      this.endPass();
      this.pass = this.currentEncoder().beginComputePass({ timestampWrites: this.profiler.next(kernel.label, params) });
    }
    const pass = this.currentPass();
    pass.setPipeline(kernel.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(workgroups[0], workgroups[1] ?? 1, workgroups[2] ?? 1);
    if (this.profiler) this.endPass();
    this.dispatchCount++;
  }

  private idOf(object: object): number {
    let id = this.ids.get(object);
    if (id === undefined) this.ids.set(object, (id = this.nextId++));
    return id;
  }

  /**
   * The bind group of these entries, created on first use. The key names each buffer by an id of its
   * object, never reused: a destroyed buffer's groups are never asked for again and age out.
   */
  private bindGroup(layout: GPUBindGroupLayout, entries: readonly GPUBindGroupEntry[]): GPUBindGroup {
    if (!this.reuseBindGroups) return this.device.createBindGroup({ layout, entries });
    let key = String(this.idOf(layout));
    for (const { resource } of entries) {
      const { buffer, offset, size } = resource as GPUBufferBinding;
      key += `|${this.idOf(buffer)}:${offset ?? 0}:${size ?? ''}`;
    }
    let group = this.bindGroups.get(key);
    if (group) {
      this.bindGroups.delete(key);
      this.bindGroupHits++;
    } else {
      group = this.device.createBindGroup({ layout, entries });
      if (this.bindGroups.size === BIND_GROUP_CACHE) this.bindGroups.delete(this.bindGroups.keys().next().value!);
    }
    this.bindGroups.set(key, group);
    return group;
  }

  /** Copies host data into a buffer in stream order (queue.writeBuffer would jump ahead of recorded work). */
  upload(target: GPUBuffer, targetOffset: number, data: ArrayBufferView): void {
    const bytes = Math.ceil(data.byteLength / 4) * 4;
    const staging = this.createStaging(bytes, GPUBufferUsage.COPY_SRC, true);
    new Uint8Array(staging.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    staging.unmap();
    this.copy(staging, 0, target, targetOffset, bytes);
    this.stagingToDestroy.push(staging);
    this.uploadBytes += bytes;
    // Loading a model uploads every weight before any submit; without this its staging copies would all be held at once.
    if (this.uploadBytes >= MAX_PENDING_UPLOAD_BYTES) this.submit();
  }

  copy(source: GPUBuffer, sourceOffset: number, target: GPUBuffer, targetOffset: number, bytes: number): void {
    this.endPass();
    this.currentEncoder().copyBufferToBuffer(source, sourceOffset, target, targetOffset, bytes);
  }

  clear(target: GPUBuffer, offset: number, bytes: number): void {
    this.endPass();
    this.currentEncoder().clearBuffer(target, offset, bytes);
  }

  /** Runs `record` in a pass of its own with timestamps written at its start and end. */
  timed(querySet: GPUQuerySet, index: number, record: () => void): void {
    this.endPass();
    this.pass = this.currentEncoder().beginComputePass({
      timestampWrites: { querySet, beginningOfPassWriteIndex: index, endOfPassWriteIndex: index + 1 },
    });
    record();
    this.endPass();
  }

  resolveQueries(querySet: GPUQuerySet, count: number, target: GPUBuffer): void {
    this.endPass();
    this.currentEncoder().resolveQuerySet(querySet, 0, count, target, 0);
  }

  get pending(): boolean {
    return this.encoder !== null;
  }

  submit(): void {
    if (!this.encoder) return;
    this.endPass();
    const afterSubmit = this.profiler?.resolve(this.encoder);
    const commands = this.encoder.finish();
    this.encoder = null;
    if (this.slotsUsed) this.device.queue.writeBuffer(this.arena, 0, this.arenaHost, 0, this.slotsUsed * this.slot);
    this.slotsUsed = 0;
    this.device.queue.submit([commands]);
    this.submitCount++;
    afterSubmit?.();
    for (const staging of this.stagingToDestroy.splice(0)) this.destroyStaging(staging);
    this.uploadBytes = 0;
  }

  /** A host-visible buffer counted in stagingBytes until destroyStaging(). */
  createStaging(size: number, usage: GPUBufferUsageFlags, mappedAtCreation = false): GPUBuffer {
    const buffer = this.device.createBuffer({ size, usage, mappedAtCreation });
    this.stagingBytes += size;
    this.peakStagingBytes = Math.max(this.peakStagingBytes, this.stagingBytes);
    return buffer;
  }

  destroyStaging(buffer: GPUBuffer): void {
    this.stagingBytes -= buffer.size;
    buffer.destroy();
  }

  resetPeak(): void {
    this.peakStagingBytes = this.stagingBytes;
  }
}
