import { spawn } from 'node:child_process';
import { constants } from 'node:os';

/**
 * Dawn clamps two adapter limits that some Vulkan drivers report as huge (lavapipe 1 000 000, RADV
 * 500 000) and says so on stderr from native code, before any device is requested:
 *   Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.
 * Dawn offers no log level, logging callback, toggle or instance option that routes or silences
 * them (dawn::WarningLog writes to the C stderr unconditionally), and no limit the program requests
 * avoids them. So the command-line programs that open the GPU run as a child whose stderr passes
 * through a filter that drops exactly these two lines.
 */
const DAWN_LIMIT_NOTICE = /^Warning: maxDynamic(?:Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\r?$/;
const NOTICE_START = 'Warning: maxDynamic';
/** The notices are ~130 characters; a longer line is not one. */
const NOTICE_MAX_LENGTH = 200;

/** Set in the child when the launcher's stderr is a terminal (the child's is then a pipe to the launcher). */
export const STDERR_TERMINAL_ENV = 'WEBGPU_RFT_STDERR_IS_TERMINAL';

/** Whether `out` ends on a terminal, also when it is the launcher's pipe to one (progress bars redraw in place then). */
export function isTerminal(out: NodeJS.WriteStream): boolean {
  return out.isTTY === true || (out === process.stderr && process.env[STDERR_TERMINAL_ENV] === '1');
}

/**
 * Passes text through unchanged and at once (a progress bar's partial line too), except whole lines
 * that are Dawn's limit notices. Only the start of a line that could still become one is held
 * back, until its end shows which it is.
 */
export class DawnNoticeFilter {
  /** The held start of the current line; null in the middle of a line already passed on. */
  private held: string | null = '';

  constructor(private readonly write: (text: string) => void) {}

  push(text: string): void {
    let out = '';
    for (const piece of text.split(/(?<=\n)/)) {
      if (this.held === null) {
        out += piece;
        if (piece.endsWith('\n')) this.held = '';
        continue;
      }
      const line = this.held + piece;
      if (piece.endsWith('\n')) {
        if (!DAWN_LIMIT_NOTICE.test(line.slice(0, -1))) out += line;
        this.held = '';
      } else if (line.length <= NOTICE_MAX_LENGTH && (NOTICE_START.startsWith(line) || line.startsWith(NOTICE_START))) {
        this.held = line;
      } else {
        out += line;
        this.held = null;
      }
    }
    if (out) this.write(out);
  }

  /** Passes on a held partial line (the stream ended without its newline). */
  end(): void {
    if (this.held) this.write(this.held);
    this.held = '';
  }
}

const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Runs `node entry args` as a child with this process's stdin and stdout, its stderr through
 * DawnNoticeFilter, and ends this process the way the child ended: the same exit status, or the
 * same signal. The child stays in this process group, so a terminal's Ctrl-C and Ctrl-Z reach it
 * directly. SIGINT, SIGTERM and SIGHUP that reach this process are forwarded, as `kill PID` and
 * `docker stop` reach only this one; one sent to the whole group thus reaches the child twice, and
 * train.ts, the one program that tells a second signal from the first, counts copies arriving
 * together as one.
 */
export function launchQuietly(entry: string, args: readonly string[]): void {
  const env = { ...process.env };
  if (process.stderr.isTTY) env[STDERR_TERMINAL_ENV] = '1';
  const child = spawn(process.execPath, [...process.execArgv, entry, ...args], { stdio: ['inherit', 'inherit', 'pipe'], env });
  const filter = new DawnNoticeFilter((text) => process.stderr.write(text));
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => filter.push(text));
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
  child.on('error', (error) => {
    process.stderr.write(`could not start ${entry}: ${error.message}\n`);
    process.exit(1);
  });
  child.on('close', (code, signal) => {
    filter.end();
    for (const s of FORWARDED_SIGNALS) process.off(s, forward);
    if (!signal) process.exit(code ?? 1);
    process.kill(process.pid, signal);
    // A signal Node ignores (SIGPIPE) or handles itself still ends this process, by the shell's convention.
    setTimeout(() => process.exit(128 + (constants.signals[signal] ?? 0)), 1000);
  });
}
