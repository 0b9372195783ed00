import { Gpu } from '../gpu/gpu.js';

// The trainer (LoRA + GRPO) is not built yet: this entry checks the WebGPU runtime so that
// `node train.js` runs end to end on a new machine, and says what is missing.
const gpu = await Gpu.create();
console.log(`WebGPU adapter: ${gpu.adapterName}${gpu.isCpuAdapter ? ' (CPU)' : ''}; features: ${[...gpu.features].join(', ') || 'none'}`);
console.log(`arguments: ${process.argv.slice(2).join(' ') || '(none)'}`);
console.log('GRPO training is not implemented yet (see the open issues); the compute core is in place.');
gpu.destroy();
