import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { create, globals } from 'webgpu';

/** How to pick the WebGPU implementation; environment variables fill in what is not given. */
export interface DeviceOptions {
  /** Dawn backend: vulkan, metal, d3d12, … (env WEBGPU_BACKEND). */
  backend?: string;
  /** Adapter name as Dawn lists it (env WEBGPU_ADAPTER); a wrong name makes Dawn print the list. */
  adapter?: string;
  /** Extra Dawn toggles, e.g. ['disable_robustness'] (env WEBGPU_TOGGLES, comma-separated). */
  toggles?: string[];
  /** Dawn toggles to turn off, e.g. ['timestamp_quantization'] for precise timings (env WEBGPU_DISABLE_TOGGLES). */
  disabledToggles?: string[];
  /**
   * Whether Dawn sub-allocates small buffers from shared heaps (default: yes; also off with
   * WEBGPU_TOGGLES=disable_resource_suballocation). Off, destroyed buffers give their memory back,
   * but on lavapipe every buffer is then one mapping of the process, and past vm.max_map_count
   * (65 530 by default) the process dies: a GRPO step of `small` at 8 × 4 × 128 did (bench/README "Memory").
   */
  suballocation?: boolean;
}

export interface AcquiredDevice {
  device: GPUDevice;
  adapterName: string;
  isCpuAdapter: boolean;
  /** Whether Dawn sub-allocates buffers (destroyed buffers' memory then stays with the process). */
  suballocation: boolean;
  features: ReadonlySet<string>;
  /** Keeps Dawn's instance reachable for the device's lifetime. */
  instance: GPU;
  /**
   * A full garbage collection of the JS heap. Dawn's Node bindings free a bind group's descriptor
   * set only once its JS object is collected (and the device has passed the work that used it);
   * on lavapipe each live descriptor set is one mapping of the process, so a step that records
   * tens of thousands of dispatches without a collection crosses vm.max_map_count.
   */
  collectGarbage: () => void;
}

const WANTED_FEATURES: GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'];
const WANTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBufferBindingSize',
  'minUniformBufferOffsetAlignment',
] as const;

// GPUBufferUsage, GPUMapMode, … are browser globals; Dawn's Node bindings provide them here.
Object.assign(globalThis, globals);

export const NO_ADAPTER_HELP = `No WebGPU adapter found.
This project runs WebGPU through Dawn (npm 'webgpu'), which needs a Vulkan driver.
  - With a GPU: install its Vulkan driver (e.g. NVIDIA's, or Mesa's radv/anv) and libvulkan1.
  - Without a GPU (CPU only, Debian 12): Mesa's lavapipe from bookworm-backports, e.g.
      add 'bookworm-backports' to /etc/apt/sources.list.d, then
      apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1
    (scripts/setup.sh does this). Set XDG_RUNTIME_DIR=/tmp if Mesa complains.
  - Check with: vulkaninfo --summary`;

const NO_SUBALLOCATION = 'disable_resource_suballocation';

export async function acquireDevice(options: DeviceOptions = {}): Promise<AcquiredDevice> {
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const backend = options.backend ?? process.env.WEBGPU_BACKEND;
  const adapterName = options.adapter ?? process.env.WEBGPU_ADAPTER;
  const toggles = [...(options.toggles ?? (process.env.WEBGPU_TOGGLES?.split(',').filter(Boolean) ?? []))];
  if (options.suballocation === true && toggles.includes(NO_SUBALLOCATION)) throw new Error(`Dawn toggle ${NO_SUBALLOCATION} contradicts suballocation: true`);
  if (options.suballocation === false && !toggles.includes(NO_SUBALLOCATION)) toggles.push(NO_SUBALLOCATION);
  const dawnOptions: string[] = [];
  if (backend) dawnOptions.push(`backend=${backend}`);
  if (adapterName) dawnOptions.push(`adapter=${adapterName}`);
  const disabled = options.disabledToggles ?? (process.env.WEBGPU_DISABLE_TOGGLES?.split(',').filter(Boolean) ?? []);
  if (toggles.length) dawnOptions.push(`enable-dawn-features=${toggles.join(',')}`);
  if (disabled.length) dawnOptions.push(`disable-dawn-features=${disabled.join(',')}`);

  const instance = create(dawnOptions);
  const adapter = await instance.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error(NO_ADAPTER_HELP + (dawnOptions.length ? `\n(Dawn options: ${dawnOptions.join(' ')})` : ''));

  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f));
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) requiredLimits[name] = adapter.limits[name];
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });

  const info = adapter.info;
  const name = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'unknown adapter';
  const isCpuAdapter = /llvmpipe|lavapipe|swiftshader|warp/i.test(name) || info.isFallbackAdapter === true;
  const suballocation = !toggles.includes(NO_SUBALLOCATION);
  return { device, adapterName: name, isCpuAdapter, suballocation, features: new Set(requiredFeatures), instance, collectGarbage: garbageCollector() };
}

let fullCollection: (() => void) | undefined;

/** V8's gc(): the global one under --expose-gc, else one taken from a new context after setting the flag. */
function garbageCollector(): () => void {
  if (!fullCollection) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (exposed) fullCollection = exposed;
    else {
      setFlagsFromString('--expose-gc');
      fullCollection = runInNewContext('gc') as () => void;
    }
  }
  return fullCollection;
}
