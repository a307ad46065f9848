import fs from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

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
