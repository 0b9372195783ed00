// `npm run web`: builds the page and serves it on localhost (WebGPU needs a secure context, and
// localhost is one). Flags: --port N (default 8080; 0 picks a free one), --out DIR.
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildWeb } from './build.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.jsonl': 'application/jsonl',
  '.safetensors': 'application/octet-stream',
};

/** Serves `dir` read-only on 127.0.0.1; resolves once listening. */
export function serveDirectory(dir: string, port: number): Promise<Server> {
  const root = resolve(dir);
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
    const file = normalize(join(root, path === '/' ? 'index.html' : path));
    if (!file.startsWith(root + '/') || !existsSync(file) || !statSync(file).isFile()) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}`);
      return;
    }
    response.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache' });
    createReadStream(file).pipe(response);
  });
  return new Promise((resolveListening, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolveListening(server));
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '8080' }, out: { type: 'string', default: 'dist/web-page' } }, strict: true });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: expected 0…65535, got ${values.port}`);
  const dir = await buildWeb(resolve(values.out));
  const server = await serveDirectory(dir, port);
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  console.log(`serving ${dir} at http://localhost:${bound}/ (Ctrl-C stops)`);
  console.log('open it in Chrome/Edge (Chromium on Linux: --enable-unsafe-webgpu)');
}
