// The 'webgpu' package (Dawn's Node bindings) for the browser build: the browser's own
// navigator.gpu. Dawn's options (backend, adapter, toggles) are the browser's to choose here,
// and the WebGPU globals (GPUBufferUsage, …) already exist.

export const NO_WEBGPU_HELP = `This browser offers no WebGPU (navigator.gpu is missing).
  - Use a browser with WebGPU: Chrome or Edge 113+, Safari 26+, Firefox 141+ (Windows).
  - On Linux, Chromium needs --enable-unsafe-webgpu (and --enable-features=Vulkan for a GPU);
    without a GPU it still runs on its CPU adapter (SwiftShader).
  - The page must come from https:// or localhost (WebGPU needs a secure context).`;

export function create(): GPU {
  if (!('gpu' in navigator) || !navigator.gpu) throw new Error(NO_WEBGPU_HELP);
  return navigator.gpu;
}

export const globals = {};
