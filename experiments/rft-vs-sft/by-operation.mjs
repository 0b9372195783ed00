// Held-out successes of each finished arm's last evaluation by the operation of the puzzle's solution
// (+, −, ×, ÷ in data/heldout.jsonl), as a Markdown table: whether an arm learned to choose the
// operation or only to write the sum, which solves 91 of the 200 puzzles.
//   node experiments/rft-vs-sft/by-operation.mjs
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const here = new URL('.', import.meta.url).pathname;
const jsonl = (path) => readFileSync(path, 'utf8').split('\n').filter((line) => line.trim()).map((line) => JSON.parse(line));
const operations = ['+', '-', '*', '/'];
const operationOf = (solution) => operations.find((op) => solution.includes(` ${op} `));
const heldOut = jsonl(join(here, 'data', 'heldout.jsonl'));
const puzzles = operations.map((op) => heldOut.filter((row) => operationOf(row.solution) === op).length);

console.log(`| arm | ${operations.map((op, i) => `${op} (${puzzles[i]})`).join(' | ')} | all (${heldOut.length}) |`);
console.log(`|---|${operations.map(() => '---:|').join('')}---:|`);
for (const arm of readdirSync(join(here, 'runs')).sort()) {
  const record = join(here, 'runs', arm, 'arm.json');
  const evaluations = join(here, 'runs', arm, 'eval-completions.jsonl');
  if (!existsSync(record) || !JSON.parse(readFileSync(record, 'utf8')).finished || !existsSync(evaluations)) continue;
  const rows = jsonl(evaluations);
  const last = Math.max(...rows.map((row) => row.step));
  const solved = new Set(rows.filter((row) => row.step === last && row.components.equation.score >= 1).map((row) => row.prompt));
  const counts = operations.map((op) => heldOut.filter((row) => operationOf(row.solution) === op && solved.has(row.prompt)).length);
  console.log(`| ${arm} | ${counts.join(' | ')} | ${counts.reduce((a, b) => a + b, 0)} |`);
}
