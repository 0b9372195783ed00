// Builds the page: one esbuild bundle of web/main.ts and the engine in src/, with the browser's
// counterparts of Node's modules (web/host/), the WGSL shaders as text, and the files the page
// loads into its volume at start (the tiny model, the registry, the built-in task data).
import { build, type Plugin } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { repositoryRoot } from '../src/io/repository-root.js';

const HOSTED_MODULES = ['fs', 'path', 'os', 'url', 'crypto', 'child_process', 'readline', 'worker_threads', 'v8', 'vm'];

/** Files the page copies into its volume, relative to the repository root (Triton's data needs the Python runner). */
const VOLUME_FILES = ['models/registry.json', 'models/tiny/config.json', 'models/tiny/model.safetensors', 'models/tiny/tokenizer.json', 'models/tiny/tokenizer_config.json', 'data/arithmetic.jsonl', 'data/countdown.jsonl'];

function browserHost(root: string): Plugin {
  return {
    name: 'browser-host',
    setup(b) {
      b.onResolve({ filter: /^node:/ }, (args) => {
        const name = args.path.slice('node:'.length);
        if (!HOSTED_MODULES.includes(name)) return { errors: [{ text: `${args.path} (imported by ${args.importer}) has no browser counterpart in web/host/` }] };
        return { path: join(root, 'web', 'host', `${name}.ts`) };
      });
      b.onResolve({ filter: /^webgpu$/ }, () => ({ path: join(root, 'web', 'host', 'webgpu.ts') }));
      b.onResolve({ filter: /^virtual:shaders$/ }, () => ({ path: 'shaders', namespace: 'virtual' }));
      b.onLoad({ filter: /^shaders$/, namespace: 'virtual' }, () => {
        const dir = join(root, 'shaders');
        const sources = Object.fromEntries(
          readdirSync(dir)
            .filter((f) => f.endsWith('.wgsl'))
            .map((f) => [f, readFileSync(join(dir, f), 'utf8')]),
        );
        return { contents: `export default ${JSON.stringify(sources)};`, loader: 'js', watchFiles: Object.keys(sources).map((f) => join(dir, f)) };
      });
    },
  };
}

/** Writes the page into outDir (index.html, app.js, volume/…); returns outDir. */
export async function buildWeb(outDir: string, root = repositoryRoot()): Promise<string> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: [join(root, 'web', 'main.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome113',
    outfile: join(outDir, 'app.js'),
    sourcemap: true,
    inject: [join(root, 'web', 'host', 'process.ts')],
    plugins: [browserHost(root)],
    logLevel: 'warning',
  });
  copyFileSync(join(root, 'web', 'index.html'), join(outDir, 'index.html'));
  for (const file of VOLUME_FILES) {
    const source = join(root, file);
    if (!existsSync(source)) throw new Error(`web build: ${source} is missing`);
    mkdirSync(dirname(join(outDir, 'volume', file)), { recursive: true });
    copyFileSync(source, join(outDir, 'volume', file));
  }
  writeFileSync(join(outDir, 'volume', 'manifest.json'), JSON.stringify(VOLUME_FILES));
  return outDir;
}
