import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { buildReward } from '../src/rewards/config.js';
import { gradeGuarded } from '../src/rewards/guard.js';
import { ExternalProcessGrader } from '../src/rewards/graders/external-process.js';
import { ProgrammaticGrader } from '../src/rewards/graders/programmatic.js';
import type { GradingInput } from '../src/rewards/types.js';

const dir = mkdtempSync(join(tmpdir(), 'rewards-'));
const input = (completion: string, example: Record<string, unknown> = {}): GradingInput => ({ prompt: 'q', completion, example });

// A user's grading module: scores by length, hangs on "hang", throws on "throw".
writeFileSync(
  join(dir, 'length-grader.mjs'),
  `export default function grade({ completion }) {
  if (completion === 'hang') for (;;) {}
  if (completion === 'throw') throw new Error('bad completion');
  return { score: Math.min(1, completion.length / 10), reason: 'length ' + completion.length };
}
export const exact = async ({ completion, example }) => (completion === example.answer ? 1 : 0);
`,
);

// An external grader speaking JSON lines: answers out of order is fine; "crash" kills it, "hang" never answers.
writeFileSync(
  join(dir, 'external-grader.mjs'),
  `import { createInterface } from 'node:readline';
createInterface({ input: process.stdin }).on('line', (line) => {
  const { id, completion, example } = JSON.parse(line);
  if (completion === 'crash') process.exit(3);
  if (completion === 'hang') return;
  const score = completion.trim() === String(example.answer) ? 1 : 0;
  process.stdout.write(JSON.stringify({ id, score, reason: 'pid ' + process.pid }) + '\\n');
});
`,
);

const graders: { close(): Promise<void> }[] = [];
afterAll(async () => {
  await Promise.all(graders.map((g) => g.close()));
});

describe('programmatic grader', () => {
  it('runs a user module in a worker, survives a hang and a throw, and picks named exports', async () => {
    const grader = new ProgrammaticGrader({ module: 'length-grader.mjs', baseDir: dir });
    graders.push(grader);
    expect(await gradeGuarded(grader, input('12345'), 5000)).toEqual({ score: 0.5, reason: 'length 5' });
    expect(await gradeGuarded(grader, input('hang'), 300)).toEqual({ score: 0, reason: 'timed out after 300 ms', failed: true });
    expect(await gradeGuarded(grader, input('throw'), 5000)).toEqual({ score: 0, reason: 'grader failed: bad completion', failed: true });
    expect((await gradeGuarded(grader, input('0123456789abc'), 5000)).score).toBe(1); // a fresh worker after the hang

    const named = new ProgrammaticGrader({ module: 'length-grader.mjs', export: 'exact', baseDir: dir });
    graders.push(named);
    expect((await gradeGuarded(named, input('yes', { answer: 'yes' }), 5000)).score).toBe(1);
    const missing = new ProgrammaticGrader({ module: 'length-grader.mjs', export: 'nope', baseDir: dir });
    graders.push(missing);
    expect((await gradeGuarded(missing, input('x'), 5000)).reason).toMatch(/exports no function named nope/);
  });
});

describe('external process grader', () => {
  it('grades over JSON lines, and restarts the process after a crash or a hang', async () => {
    const grader = new ExternalProcessGrader({ command: process.execPath, args: [join(dir, 'external-grader.mjs')] });
    graders.push(grader);
    const [first, second] = await Promise.all([
      gradeGuarded(grader, input('42', { answer: 42 }), 5000),
      gradeGuarded(grader, input('41', { answer: 42 }), 5000),
    ]);
    expect([first.score, second.score]).toEqual([1, 0]);
    expect(first.reason).toBe(second.reason); // the same long-lived process answered both

    const crashed = await gradeGuarded(grader, input('crash', { answer: 1 }), 5000);
    expect(crashed.score).toBe(0);
    expect(crashed.reason).toMatch(/exited \(code 3\)/);
    const afterCrash = await gradeGuarded(grader, input('7', { answer: 7 }), 5000);
    expect(afterCrash.score).toBe(1);
    expect(afterCrash.reason).not.toBe(first.reason); // a new process

    expect(await gradeGuarded(grader, input('hang', { answer: 1 }), 300)).toEqual({ score: 0, reason: 'timed out after 300 ms', failed: true });
    expect((await gradeGuarded(grader, input('8', { answer: 8 }), 5000)).score).toBe(1);
  });

  it('is reachable from a reward config, with paths relative to the config', async () => {
    const reward = buildReward(
      {
        components: [
          { name: 'external', grader: { type: 'external', command: process.execPath, args: ['external-grader.mjs'] }, timeoutMs: 5000 },
          { name: 'length', grader: { type: 'programmatic', module: 'length-grader.mjs' }, weight: 0.5, timeoutMs: 5000 },
        ],
      },
      { baseDir: dir },
    );
    const [score] = await reward.score([input('12345', { answer: 12345 })]);
    await reward.close();
    expect(score.components.external.score).toBe(1);
    expect(score.total).toBeCloseTo(1 + 0.5 * 0.5);
  });
});
