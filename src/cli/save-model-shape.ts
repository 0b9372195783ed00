// Writes a GGUF model's architecture and tokenizer as a Hugging Face folder without weights
// (config.json, tokenizer.json, tokenizer_config.json), for `--model random:<folder>`: a model of the
// same shape with fresh weights, on machines that do not hold the checkpoint.
//   node dist/src/cli/save-model-shape.js --model small --out models-out/smollm2-135m
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GgufFile } from '../io/gguf.js';
import { resolveModel } from '../io/model-registry.js';
import { tokenizerJsonFromGguf } from '../tokenizer/gguf-tokenizer-json.js';

const { values: args } = parseArgs({ options: { model: { type: 'string', default: 'small' }, out: { type: 'string' } } });
if (!args.out) throw new Error('--out FOLDER is required');
const resolved = resolveModel(args.model!);
if (resolved.tokenizer.format !== 'gguf') throw new Error(`--model ${args.model}: only GGUF models are converted (its tokenizer is already a folder: ${resolved.tokenizer.path})`);
const file = GgufFile.open(resolved.tokenizer.path);
try {
  const { tokenizerJson, settings } = tokenizerJsonFromGguf(file);
  mkdirSync(args.out, { recursive: true });
  writeFileSync(join(args.out, 'config.json'), JSON.stringify(resolved.config, null, 2));
  writeFileSync(join(args.out, 'tokenizer.json'), JSON.stringify(tokenizerJson));
  writeFileSync(join(args.out, 'tokenizer_config.json'), JSON.stringify(settings, null, 2));
} finally {
  file.close();
}
console.log(`${args.model}: config.json, tokenizer.json, tokenizer_config.json written to ${args.out}`);
