// node:url for the browser build. Modules live at the page's address, so their "file path" is
// that address's path: the bundle at /app.js sits in the volume's root, next to /package.json.
// A path in the volume becomes a blob: URL of its bytes, which is how a browser imports code
// that exists only in memory (a user's grader module).
import { readFileSync } from './fs.js';

export function fileURLToPath(url: string | URL): string {
  return decodeURIComponent(new URL(url).pathname);
}

/** The fragment (ignored when the module is fetched) keeps the file's path in messages that name the URL. */
export function pathToFileURL(path: string): URL {
  return new URL(`${URL.createObjectURL(new Blob([readFileSync(path) as BlobPart], { type: 'text/javascript' }))}#${path}`);
}
