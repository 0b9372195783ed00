import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DawnNoticeFilter } from '../src/cli/quiet-launch.js';
import { REPO_ROOT } from './python/run-python.js';

const NOTICES = ['Uniform', 'Storage'].map((kind) => `Warning: maxDynamic${kind}BuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.\n`);
const OTHER = [
  'model small, task quick-arithmetic\n',
  'Warning: maxDynamicUniformBuffersPerPipelineLayout is something else entirely.\n',
  'Warning: the device was lost\n',
  `  ${NOTICES[0]}`,
];

function filtered(chunks: readonly string[]): { out: string; writes: string[] } {
  const writes: string[] = [];
  const filter = new DawnNoticeFilter((text) => writes.push(text));
  for (const chunk of chunks) filter.push(chunk);
  filter.end();
  return { out: writes.join(''), writes };
}

describe('DawnNoticeFilter', () => {
  const text = [OTHER[0], NOTICES[0], NOTICES[1], ...OTHER.slice(1), 'no newline at the end'].join('');
  const expected = [...OTHER, 'no newline at the end'].join('');

  it('drops exactly the two notice lines, however the stream is cut', () => {
    expect(filtered([text]).out).toBe(expected);
    for (let cut = 0; cut <= text.length; cut++) expect(filtered([text.slice(0, cut), text.slice(cut)]).out, `cut at ${cut}`).toBe(expected);
    expect(filtered([...text]).out).toBe(expected);
    // CRLF line ends, as a terminal or another platform may give them.
    expect(filtered([NOTICES[0].replace('\n', '\r\n')]).out).toBe('');
  });

  it('passes a progress bar redrawn in place at once, without waiting for a newline', () => {
    const writes: string[] = [];
    const filter = new DawnNoticeFilter((t) => writes.push(t));
    filter.push('\r\x1b[2KGRPO [==>   ] 1/4');
    expect(writes).toEqual(['\r\x1b[2KGRPO [==>   ] 1/4']);
    filter.push('\r\x1b[2KGRPO [=====>] 2/4');
    expect(writes.at(-1)).toBe('\r\x1b[2KGRPO [=====>] 2/4');
    // A partial line that could still become a notice is held until its end shows it is not one.
    filter.push('\nWarning: maxDyn');
    expect(writes.at(-1)).toBe('\n');
    filter.push('amic blocks\n');
    expect(writes.at(-1)).toBe('Warning: maxDynamic blocks\n');
  });
});

describe('launch.js runs a program without the notices and ends as it ended', () => {
  const launcher = join(REPO_ROOT, 'dist', 'src', 'cli', 'launch.js');
  const dir = mkdtempSync(join(tmpdir(), 'quiet-launch-'));
  const program = (name: string, body: string): string => {
    const path = join(dir, name);
    writeFileSync(path, body);
    return path;
  };
  const run = (args: readonly string[], onStderr?: (all: string, child: ReturnType<typeof spawn>) => void) => {
    if (!existsSync(launcher)) throw new Error('dist/ is missing: npm test builds it first');
    const child = spawn(process.execPath, [launcher, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => {
      stderr += t;
      onStderr?.(stderr, child);
    });
    return new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
    );
  };

  it('passes arguments, stdout and every other stderr line, and the exit status', async () => {
    const path = program('says.mjs', `process.stderr.write(${JSON.stringify(NOTICES.join('') + OTHER.join(''))});\nconsole.log(JSON.stringify(process.argv.slice(2)));\nprocess.exit(3);\n`);
    const result = await run([path, '--model', 'a b', '--x']);
    expect(result.code).toBe(3);
    expect(result.stdout).toBe('["--model","a b","--x"]\n');
    expect(result.stderr).toBe(OTHER.join(''));
  });

  it('ends by the signal that ended the program', async () => {
    const path = program('killed.mjs', "process.kill(process.pid, 'SIGTERM');\nsetTimeout(() => {}, 10_000);\n");
    expect(await run([path])).toMatchObject({ code: null, signal: 'SIGTERM' });
  });

  it('forwards a signal sent to it alone, and the program decides how to end', async () => {
    const path = program('stops.mjs', "process.on('SIGTERM', () => { console.error('stopping cleanly'); process.exit(143); });\nconsole.error('ready');\nsetTimeout(() => {}, 10_000);\n");
    const result = await run([path], (all, child) => {
      if (all === 'ready\n') child.kill('SIGTERM');
    });
    expect(result).toMatchObject({ code: 143, stderr: 'ready\nstopping cleanly\n' });
  });

  it("tells the program when its stderr ends on a terminal (a progress bar redraws in place)", async (ctx) => {
    // Skipped where script(1) cannot give a command a pseudo-terminal.
    if (spawnSync('script', ['-qec', 'test -t 2', '/dev/null']).status !== 0) ctx.skip();
    const path = program('terminal.mjs', `import { isTerminal } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'cli', 'quiet-launch.js')).href)};\nconsole.log('stderr on a terminal: ' + isTerminal(process.stderr));\n`);
    // script(1) gives the launcher a pseudo-terminal; through a pipe the program is told it is not one.
    const onTerminal = spawnSync('script', ['-qec', `${process.execPath} ${launcher} ${path}`, '/dev/null'], { encoding: 'utf8' });
    expect(onTerminal.stdout).toContain('stderr on a terminal: true');
    expect((await run([path])).stdout).toBe('stderr on a terminal: false\n');
  });

  it("leaves out the notices Dawn prints when it opens this machine's adapter", async (ctx) => {
    const path = program('opens.mjs', `import { Gpu } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'gpu', 'gpu.js')).href)};\nconst gpu = await Gpu.create();\nconsole.error('opened');\ngpu.destroy();\n`);
    const direct = spawnSync(process.execPath, [path], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' } });
    expect(direct.stderr).toContain('opened');
    // A driver whose limits Dawn does not clamp gives nothing to leave out.
    if (!direct.stderr.includes('artificially reduced')) ctx.skip();
    const result = await run([path]);
    expect(result).toMatchObject({ code: 0, stderr: 'opened\n' });
  });
});
