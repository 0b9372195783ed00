// Drives the page in headless Chromium from Node (tests and benchmarks): the system's chromium
// through puppeteer-core, which never downloads a browser of its own.
import { existsSync } from 'node:fs';
import type { Server } from 'node:http';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { buildWeb } from './build.js';
import { serveDirectory } from './serve.js';

/** The chromium binary: CHROMIUM_PATH, else Debian's; undefined when there is none. */
export function chromiumPath(): string | undefined {
  return [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p): p is string => !!p && existsSync(p));
}

export interface PageTab {
  readonly page: Page;
  /** Uncaught errors of the page's scripts. */
  readonly pageErrors: string[];
}

export interface OpenPage extends PageTab {
  /** Opens the page again in a new tab of the same browser: a fresh page with an empty volume. */
  newTab(): Promise<PageTab>;
  close(): Promise<void>;
}

async function openTab(browser: Browser, url: string, timeoutMs: number): Promise<PageTab> {
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  await page.setViewport({ width: 1200, height: 1500 });
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.state !== 'loading', { polling: 200, timeout: timeoutMs });
  return { page, pageErrors };
}

/** Builds the page into `buildDir`, serves it on localhost and opens it; resolves once it is ready (or refused). */
export async function openPage(chromium: string, buildDir: string, timeoutMs: number): Promise<OpenPage> {
  const server: Server = await serveDirectory(await buildWeb(buildDir), 0);
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/`;
  let browser: Browser | undefined;
  try {
    browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      protocolTimeout: timeoutMs,
      args: ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu'],
    });
    const opened = browser;
    return {
      ...(await openTab(opened, url, timeoutMs)),
      newTab: () => openTab(opened, url, timeoutMs),
      close: async () => {
        await opened.close();
        server.close();
      },
    };
  } catch (error) {
    await browser?.close();
    server.close();
    throw error;
  }
}

export const pageState = (page: Page): Promise<string> => page.evaluate(() => document.body.dataset.state ?? '');
export const pageError = (page: Page): Promise<string> => page.$eval('#error', (e) => e.textContent ?? '');

/** Fills the GRPO fields (camelCase names, as train.js's --config) and picks model and task. */
export async function chooseRun(page: Page, model: string, task: string, settings: Readonly<Record<string, string>>): Promise<void> {
  await page.select('#model', model);
  await page.select('#task', task);
  for (const [key, value] of Object.entries(settings)) {
    await page.$eval(`[name="${key}"]`, (field, v) => ((field as HTMLInputElement).value = v), value);
  }
}

/** Resolves when the run has finished, failed or stopped; returns that state. */
export async function waitForRunEnd(page: Page, timeoutMs: number): Promise<string> {
  await page.waitForFunction(() => ['done', 'failed', 'stopped'].includes(document.body.dataset.state ?? ''), { polling: 500, timeout: timeoutMs });
  return pageState(page);
}

/** Every download the page offers, by file name, read back through the links' blob URLs. */
export async function pageDownloads(page: Page): Promise<Map<string, Uint8Array>> {
  const files = await page.evaluate(async () => {
    const links = [...document.querySelectorAll<HTMLAnchorElement>('#downloads a')];
    return Promise.all(
      links.map(async (link) => {
        const bytes = new Uint8Array(await (await fetch(link.href)).arrayBuffer());
        let binary = '';
        for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
        return [link.download, btoa(binary)] as const;
      }),
    );
  });
  return new Map(files.map(([name, base64]) => [name, new Uint8Array(Buffer.from(base64, 'base64'))]));
}

/** A JSONL file's rows. */
export function jsonlRows(bytes: Uint8Array): Record<string, number>[] {
  return new TextDecoder().decode(bytes).trim().split('\n').map((line) => JSON.parse(line) as Record<string, number>);
}
