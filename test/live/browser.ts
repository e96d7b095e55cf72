import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';

/**
 * Headless Chromium for the live page's tests: Debian's package at /usr/bin/chromium, driven
 * by playwright-core (never Playwright's own browser download). Installed on first use by
 * scripts/browser/install-chromium.sh (apt-get as root), so a fresh machine needs no manual step.
 */
export const CHROMIUM = '/usr/bin/chromium';
const INSTALL = fileURLToPath(new URL('../../scripts/browser/install-chromium.sh', import.meta.url));

export function ensureChromium(): void {
  if (existsSync(CHROMIUM)) return;
  const result = spawnSync('bash', [INSTALL], { encoding: 'utf8', timeout: 15 * 60_000 });
  if (result.status !== 0 || !existsSync(CHROMIUM)) {
    throw new Error(`Chromium is needed for the live page test and could not be installed:\n${result.stdout}\n${result.stderr}`);
  }
}

export async function launchChromium(): Promise<Browser> {
  ensureChromium();
  // Root in a container: Chromium's sandbox needs user namespaces we may not have (Playwright passes --no-sandbox).
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--disable-dev-shm-usage'] });
}
