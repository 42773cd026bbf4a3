// Headless Chromium for the browser tests and the demo screenshot: Debian's /usr/bin/chromium (installed
// by .ci/run; CHROMIUM overrides the path) driven by playwright-core, which downloads no browser of its
// own. A fresh profile each time; no network beyond 127.0.0.1 (no QUIC, sync, component updates or
// background requests).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Resolves to { context, close() }: a persistent context over a temporary --user-data-dir. */
export async function launchChromium() {
  const profile = mkdtempSync(join(tmpdir(), 'ddpm-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 45_000,
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
