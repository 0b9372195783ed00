// The browser's counterparts of Node's modules (web/host/) against Node's own, and the page's
// tar archives against the system tar. These run in Node: the counterparts are plain code.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { describe, expect, it } from 'vitest';
import { specialise } from '../src/gpu/shader-source.js';
import { readTarArchive, tarArchive } from '../web/archive.js';
import { createHash as pageHash } from '../web/host/crypto.js';
import * as volume from '../web/host/fs.js';
import * as pagePath from '../web/host/path.js';

describe('web/host/path matches node:path (POSIX)', () => {
  const cases = ['/a/b/../c/./d', 'a//b/', '../x/../../y', '/', '.', '/run/checkpoint-2/', 'models/tiny/config.json', '/..', 'a/..'];
  it.each(cases)('%s', (p) => {
    expect(pagePath.normalize(p)).toBe(nodePath.posix.normalize(p).replace(/(.)\/$/, '$1'));
    expect(pagePath.dirname(p)).toBe(nodePath.posix.dirname(nodePath.posix.normalize(p)));
    expect(pagePath.basename(p)).toBe(nodePath.posix.basename(nodePath.posix.normalize(p)));
    expect(pagePath.join('/root', p)).toBe(nodePath.posix.join('/root', p).replace(/(.)\/$/, '$1'));
    expect(pagePath.resolve('/x', p)).toBe(nodePath.posix.resolve('/x', p));
    expect(pagePath.isAbsolute(p)).toBe(nodePath.posix.isAbsolute(p));
  });
  it('basename drops a suffix', () => expect(pagePath.basename('/a/run.tar', '.tar')).toBe('run'));
});

describe('web/host/crypto sha256', () => {
  it.each([0, 1, 55, 56, 63, 64, 65, 1000, 100_003])('matches node:crypto on %i bytes', (n) => {
    const bytes = new Uint8Array(n).map((_, i) => (i * 131 + 7) & 0xff);
    expect(pageHash('sha256').update(bytes).digest('hex')).toBe(createHash('sha256').update(bytes).digest('hex'));
  });
  it('hashes strings as UTF-8 and across updates', () => {
    expect(pageHash('sha256').update('über').update('-rft').digest('hex')).toBe(createHash('sha256').update('über-rft').digest('hex'));
  });
});

describe('web/host/fs volume', () => {
  it('reads, writes, appends, renames and removes like node:fs', () => {
    volume.mkdirSync('/t/a/b', { recursive: true });
    volume.writeFileSync('/t/a/b/x.txt', 'hello');
    volume.appendFileSync('/t/a/b/x.txt', ' world');
    expect(volume.readFileSync('/t/a/b/x.txt', 'utf8')).toBe('hello world');
    expect(volume.statSync('/t/a/b/x.txt').size).toBe(11);
    expect(volume.readdirSync('/t/a')).toEqual(['b']);
    volume.renameSync('/t/a', '/t/c');
    expect(volume.existsSync('/t/a/b/x.txt')).toBe(false);
    expect(volume.readFileSync('/t/c/b/x.txt', 'utf8')).toBe('hello world');
    expect(() => volume.readFileSync('/t/nope')).toThrow(/ENOENT: no such file or directory, open '\/t\/nope'/);
    expect(() => volume.writeFileSync('/t/missing/dir/f', 'x')).toThrow(/ENOENT/);
    expect(() => volume.rmSync('/t/c')).toThrow(/is a directory/);
    volume.rmSync('/t/c', { recursive: true });
    expect(volume.readdirSync('/t')).toEqual([]);
  });

  it('positional reads and writes through descriptors', () => {
    const fd = volume.openSync('/t/bin', 'w');
    volume.writeSync(fd, new Uint8Array([1, 2, 3, 4, 5]), 1, 3);
    volume.writeFileSync(fd, new Uint8Array([9]));
    volume.fsyncSync(fd);
    volume.closeSync(fd);
    const rd = volume.openSync('/t/bin', 'r');
    expect(volume.fstatSync(rd).size).toBe(4);
    const out = new Uint8Array(6);
    expect(volume.readSync(rd, out, 1, 10, 1)).toBe(3);
    expect([...out]).toEqual([0, 3, 4, 9, 0, 0]);
    volume.closeSync(rd);
    expect(() => volume.closeSync(rd)).toThrow(/EBADF/);
  });

  it('a link fails when its name exists (what the run lock relies on)', () => {
    volume.writeFileSync('/t/draft', 'me');
    volume.linkSync('/t/draft', '/t/lock');
    expect(() => volume.linkSync('/t/draft', '/t/lock')).toThrow(/EEXIST/);
    expect(volume.readFileSync('/t/lock', 'utf8')).toBe('me');
  });
});

describe('run archives (ustar)', () => {
  const entries = [
    { path: 'checkpoint-2/adapter_config.json', bytes: new TextEncoder().encode('{"r": 4}') },
    { path: 'checkpoint-2/adapter_model.safetensors', bytes: new Uint8Array(1500).map((_, i) => i % 251) },
    { path: 'metrics.jsonl', bytes: new Uint8Array(0) },
  ];

  it('round-trips and is read by the system tar', () => {
    const archive = tarArchive(entries);
    expect(readTarArchive(archive, 'run.tar')).toEqual(entries);
    const dir = mkdtempSync(nodePath.join(tmpdir(), 'run-tar-'));
    writeFileSync(nodePath.join(dir, 'run.tar'), archive);
    execFileSync('tar', ['xf', 'run.tar'], { cwd: dir });
    for (const e of entries) expect(new Uint8Array(readFileSync(nodePath.join(dir, e.path)))).toEqual(e.bytes);
  });

  it('reads what the system tar writes, and refuses a damaged archive by name', () => {
    const dir = mkdtempSync(nodePath.join(tmpdir(), 'run-tar-'));
    writeFileSync(nodePath.join(dir, 'a.txt'), 'abc');
    execFileSync('tar', ['--format=ustar', '-cf', 'sys.tar', 'a.txt'], { cwd: dir });
    const archive = new Uint8Array(readFileSync(nodePath.join(dir, 'sys.tar')));
    expect(readTarArchive(archive, 'sys.tar')).toEqual([{ path: 'a.txt', bytes: new TextEncoder().encode('abc') }]);
    archive[10] ^= 0xff;
    expect(() => readTarArchive(archive, 'sys.tar')).toThrow(/sys.tar: not a tar archive \(bad header checksum/);
    expect(() => readTarArchive(tarArchive(entries).subarray(0, 700), 'cut.tar')).toThrow(/cut.tar: truncated/);
  });
});

describe('shader specialisation', () => {
  it('enables f16 only for code that uses it, not for a comment that mentions it', () => {
    const source = '// table in T (f32 or f16)\nalias T = f32;\n@compute @workgroup_size(1) fn main() {}\n';
    expect(specialise('c', source)).not.toMatch(/enable f16/);
    expect(specialise('c', source, { T: 'f16' })).toMatch(/^enable f16; /);
  });

  it('blanks a one-line if that calls a subgroup builtin on a flag specialised to false, so the extension is not enabled; keeps other lines and the line count', () => {
    const source = [
      'const SUBGROUPS: bool = true;',
      'const R: bool = true;',
      '@compute @workgroup_size(8) fn main() {',
      '  var x = 1.0;',
      '  if (SUBGROUPS) { x = subgroupBroadcast(x, 0u); }',
      '  if (R) { x = 2.0; } else { x = 3.0; }',
      '  if (R) { x = out[0]; }',
      '}',
      '',
    ].join('\n');
    expect(specialise('c', source, { SUBGROUPS: true })).toMatch(/^enable subgroups; [^]*subgroupBroadcast/);
    const off = specialise('c', source, { SUBGROUPS: false, R: false });
    expect(off).not.toMatch(/subgroupBroadcast|enable subgroups/);
    expect(off.split('\n')).toHaveLength(source.split('\n').length);
    expect(off).toContain('  if (R) { x = 2.0; } else { x = 3.0; }');
    // A binding's only use stays, so the automatic pipeline layout still has it.
    expect(off).toContain('  if (R) { x = out[0]; }');
    expect(off).toContain('const SUBGROUPS: bool = false;');
  });

  it('unrolls loops marked // unroll, inner first, to the bound a specialised const gives, keeping the line count', () => {
    const source = [
      'const D: u32 = 8u;',
      'const D4: u32 = (D + 1u) / 4u - 0u;',
      'fn f() {',
      '  for (var d4 = 0u; d4 < D4; d4++) { // unroll',
      '    s += a[d4]; // a comment',
      '    for (var i = 1u; i < 3u; i++) { // unroll',
      '      t[4u * d4 + i] = 1.0;',
      '    }',
      '  }',
      '  for (var j = 0u; j < n; j++) { x += 1.0; }',
      '}',
    ].join('\n');
    const out = specialise('c', source, { D: 12 }).split('\n');
    expect(out).toHaveLength(11);
    const inner = '{ const i = 1u; t[4u * d4 + i] = 1.0; } { const i = 2u; t[4u * d4 + i] = 1.0; }';
    expect(out[3]).toBe(`  ${[0, 1, 2].map((d4) => `{ const d4 = ${d4}u; s += a[d4]; ${inner} }`).join(' ')}`);
    expect(out.slice(4, 9).every((line) => line === '')).toBe(true);
    expect(out[9]).toBe('  for (var j = 0u; j < n; j++) { x += 1.0; }');
  });

  it('refuses a loop marked // unroll that it cannot expand, naming the shader and line', () => {
    const loop = (bound: string, body = 'x += 1.0;') => `const N: u32 = 2u;\nfn f() {\n  for (var i = 0u; i < ${bound}; i++) { // unroll\n    ${body}\n  }\n}`;
    expect(() => specialise('s', loop('n'))).toThrow(/shader 's' line 3: the bound of a loop marked \/\/ unroll must be an integer or a const of integers, got 'n'/);
    expect(() => specialise('s', loop('N', 'if (x > 1.0) { break; }'))).toThrow(/shader 's' line 3: a loop marked \/\/ unroll must not break or continue/);
    expect(() => specialise('s', loop('N', 'x += 1.0; } {'))).toThrow(/shader 's' line 4: close a loop marked \/\/ unroll with a line of its own/);
    expect(() => specialise('s', 'fn f() {\n  for (var i = 0u; i < 2u; i++) { // unroll\n    x += 1.0;\n')).toThrow(/shader 's' line 2: the loop marked \/\/ unroll is not closed/);
  });
});
