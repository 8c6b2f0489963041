/**
 * Headless Chromium for the tests that look at pages the way a person would: Debian's
 * `chromium` (installed by scripts/ensure_chromium.sh before `npm test`), driven by
 * playwright-core, which downloads nothing.
 * @module
 */
import { type Browser, chromium } from "playwright-core";
import * as fs from "node:fs";

/** Where Debian puts it; MFT_CHROMIUM overrides. */
export const CHROMIUM = process.env.MFT_CHROMIUM ??
  ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => fs.existsSync(p)) ??
  "/usr/bin/chromium";

/** Starts a headless Chromium; close it in afterAll. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container has no user namespaces for the sandbox.
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
}
