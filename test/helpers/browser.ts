import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { expect } from 'vitest';
import type { SluiceClient } from '../../src/sdk/client';
import type { TestApp } from './app';
import { repoRoot } from './process';

/** Debian's chromium package; .ci/run installs it when missing. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * Why these flags: --no-sandbox (root in a container), and no background networking, component
 * updates or sync, whose connections this closed network refuses (Chromium then stalls).
 */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Browser tests run where Chromium is installed. Elsewhere `npm test` skips them with one line;
 * under CI (`CI=true`, as `.ci/run` runs) they never skip: a missing browser fails the run.
 */
export const chromiumAvailable = fs.existsSync(CHROMIUM_PATH);
export const runBrowserTests = chromiumAvailable || Boolean(process.env['CI']);
let announced = false;
export function announceBrowserSkip(): void {
  if (runBrowserTests || announced) return;
  announced = true;
  console.warn(`Skipping browser tests: no Chromium at ${CHROMIUM_PATH}. Enable them with "apt-get install -y --no-install-recommends chromium".`);
}

export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM_PATH)) {
    throw new Error(`No Chromium at ${CHROMIUM_PATH}: run "apt-get install -y --no-install-recommends chromium" (.ci/run does this)`);
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, timeout: 60_000 });
}

/** Where the browser tests keep screenshots and downloads (gitignored). */
export const ARTIFACTS = path.join(repoRoot, 'test-results');
const AXE_PATH = path.join(repoRoot, 'node_modules/axe-core/axe.min.js');

/** Signs the page in with `client`'s token (the page keeps its session in localStorage). */
export async function signIn(p: Page, app: TestApp, c: SluiceClient, roles: string[]): Promise<void> {
  await p.goto(`${app.url}/`);
  const session = { clientId: 'web-screens', token: c.options.token, expiresAt: new Date(Date.now() + 3_600_000).toISOString(), roles };
  await p.evaluate(`localStorage.clear(); localStorage.setItem('sluice.session', ${JSON.stringify(JSON.stringify(session))})`);
}

/** axe-core in the page: no serious or critical violation. */
export async function audit(p: Page, name: string): Promise<void> {
  await p.addScriptTag({ path: AXE_PATH });
  const result = (await p.evaluate(`axe.run(document, { resultTypes: ['violations'] })`)) as {
    violations: Array<{ id: string; impact: string; help: string; nodes: Array<{ target: string[] }> }>;
  };
  const bad = result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
  expect(bad, `axe on ${name}`).toEqual([]);
}

/** A screenshot at desktop width and one at 390 px, where nothing may overflow sideways. */
export async function shoot(p: Page, name: string): Promise<void> {
  await p.screenshot({ path: path.join(ARTIFACTS, `web-${name}.png`), fullPage: true });
  const size = p.viewportSize()!;
  await p.setViewportSize({ width: 390, height: 844 });
  await p.waitForTimeout(100);
  const overflow = await p.evaluate(`document.documentElement.scrollWidth - document.documentElement.clientWidth`);
  expect(overflow, `${name} at 390 px scrolls sideways`).toBeLessThanOrEqual(0);
  await p.screenshot({ path: path.join(ARTIFACTS, `web-${name}-390.png`), fullPage: true });
  await p.setViewportSize(size);
}
