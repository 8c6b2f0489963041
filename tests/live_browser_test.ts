/**
 * The server's live page as a person sees it, in headless Chromium: the app served for real on
 * 127.0.0.1 (startServer), a run posted while the page is open, and the page's numbers moving
 * with it; then the token rule and a page from another origin that can not read `/live`.
 * @module
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Browser, Page } from "playwright-core";
import { type RunningServer, startServer } from "../server.ts";
import { createMockProvider } from "../src/providers/mock.ts";
import { createApp, type ServerOptions } from "../src/server/app.ts";
import { launchBrowser } from "./_browser.ts";

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

async function withServer(
  options: Partial<ServerOptions>,
  fn: (server: RunningServer) => Promise<void>,
): Promise<void> {
  const app = createApp({ provider: createMockProvider({ latencyMs: 300 }), rate: 20, ...options });
  const server = await startServer(app.fetch, { hostname: "127.0.0.1", port: 0 });
  try {
    await fn(server);
  } finally {
    await server.close({ force: true });
  }
}

function prompts(n: number): string {
  return Array.from({ length: n }, (_, i) => JSON.stringify({ id: `p${i}`, prompt: `q ${i}` }))
    .join("\n") + "\n";
}

/** Polls what the page shows until `check` holds; fails after `timeoutMs`. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000) {
  const end = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > end) throw new Error(`the page never showed ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The text of `[data-k=k]` (the first one under `scope`). */
async function k(page: Page, key: string, scope = ""): Promise<string> {
  return (await page.locator(`${scope} [data-k="${key}"]`.trim()).first().textContent()) ?? "";
}

test("the live page follows a run while it goes and shows how it ended", async () => {
  const token = "live-browser-token-42";
  await withServer({ token }, async (server) => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/#token=${token}`);
    await page.waitForSelector('#status[data-state="live"]');
    // The token left the address bar (it is kept in this tab's sessionStorage).
    expect(page.url()).toBe(`${server.url}/`);
    expect(await k(page, "target")).toBe("20");

    // 80 prompts at 20 req/s with 300 ms answers: about 4.5 s of traffic.
    const res = await fetch(`${server.url}/v1/runs`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: prompts(80),
    });
    const id = res.headers.get("x-mft-run-id")!;
    const row = `tr[data-run="${id}"]`;
    await page.waitForSelector(row, { timeout: 10_000 });
    // While it runs, what a person sees moves: done goes up, requests are in flight.
    const first = Number(await k(page, "done", row));
    await until("done going up", async () => Number(await k(page, "done", row)) > first);
    await until(
      "requests sent in the last second",
      async () => Number(await k(page, "sent_per_s")) > 0,
    );
    expect(await page.locator("#live-chart polyline[data-series=sent]").count()).toBe(1);
    const body = await res.text();
    const summary = JSON.parse(body.trimEnd().split("\n").at(-1)!).summary;
    // Once it is over, the row shows the same counts as the run's summary line.
    await until(
      "the run finished",
      async () => (await page.locator(row).getAttribute("class")) === "finished",
    );
    expect(Number(await k(page, "ok", row))).toBe(summary.ok);
    expect(summary.ok).toBe(80);
    expect(Number(await k(page, "in_flight", row))).toBe(0);
    // The quota's last minute counts every request of the run once its last second is over.
    await until(
      "every request in the last minute",
      async () => Number(await k(page, "sent_minute")) === summary.requests,
    );
    await page.close();
  });
}, 60_000);

test("without the token the page says so and shows no data", async () => {
  await withServer({ token: "secret-token-xyz" }, async (server) => {
    const context = await browser.newContext(); // no token left in sessionStorage
    const page = await context.newPage();
    await page.goto(`${server.url}/`);
    await page.waitForSelector('#status[data-state="unauthorized"]');
    expect(await page.locator("#auth").isVisible()).toBe(true);
    expect(await k(page, "events")).toBe("0");
    await context.close();
  });
}, 30_000);

test(
  "a page from another origin can not read /live, even from a server without a token",
  async () => {
    await withServer({}, async (server) => {
      const other = await startServer(
        () =>
          new Response("<!doctype html><title>other</title>", {
            headers: { "content-type": "text/html" },
          }),
        { hostname: "127.0.0.1", port: 0 },
      );
      try {
        const page = await browser.newPage();
        await page.goto(`${server.url}/`);
        await page.waitForSelector('#status[data-state="live"]'); // the same origin reads it
        await page.goto(`${other.url}/`);
        const outcome = await page.evaluate(async (url) => {
          try {
            const res = await fetch(url);
            const reader = res.body!.getReader();
            await reader.read();
            return "read";
          } catch (e) {
            return `blocked: ${(e as Error).name}`;
          }
        }, `${server.url}/live`);
        expect(outcome).toBe("blocked: TypeError");
        await page.close();
      } finally {
        await other.close({ force: true });
      }
    });
  },
  30_000,
);
