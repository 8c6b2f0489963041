/**
 * The run report as a person sees it: a real CLI run against the mock provider server (with
 * quota 429s, failures and blocked answers), then its HTML opened in headless Chromium.
 * @module
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Browser } from "playwright-core";
import { type MockProvider, startMockProvider } from "./mocks/mock_provider.ts";
import { parseStatsFile } from "../src/report/stats_file.ts";
import { cliHarness, readJsonl } from "./_cli.ts";
import { launchBrowser } from "./_browser.ts";

/** A made-up key for this run only (keys never live in the source). */
const KEY = `test-key-${crypto.randomUUID()}`;

let mock: MockProvider;
let dir: string;
let browser: Browser;

beforeAll(async () => {
  mock = await startMockProvider({ latencyMs: 150 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mft-report-"));
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await mock.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const { cli, spawnCli } = cliHarness({
  dir: () => dir,
  drop: /API_KEY|BASE_URL|BUN_CONFIG_MAX_HTTP_REQUESTS/,
  detached: true, // its own process group, so a test can signal it the way a terminal does
});

/** A number the CLI's summary printed after `label`. */
function said(stderr: string, pattern: RegExp): number {
  const m = pattern.exec(stderr);
  if (!m) throw new Error(`not in the summary: ${pattern}\n${stderr}`);
  return Number(m[1]);
}

test("the report of a CLI run shows its chart points and the numbers of its summary", async () => {
  const input = path.join(dir, "in.jsonl");
  const lines = Array.from({ length: 160 }, (_, i) => {
    const tag = i > 20 && i % 32 === 0
      ? "[[mock:fail=1:429]][[mock:retry-after-ms=400]]"
      : i > 20 && i % 37 === 0
      ? "[[mock:503]]"
      : i > 20 && i % 41 === 0
      ? "[[mock:blocked]]"
      : "";
    return JSON.stringify({ id: `q${i}`, prompt: `${tag} question number ${i}` });
  });
  fs.writeFileSync(input, lines.join("\n") + "\n");
  const output = path.join(dir, "out.jsonl");
  const r = await cli(
    [
      "run",
      input,
      "--provider",
      "openai",
      "--base-url",
      `${mock.url}/v1`,
      "--rate-limit",
      "50",
      "--backoff",
      "50ms",
      "--max-attempts",
      "2",
      "-o",
      output,
      "--report",
    ],
    { OPENAI_API_KEY: KEY },
  );
  expect(r.code).toBe(1); // some lines failed
  const reportFile = `${output}.report.html`;
  expect(r.stderr).toContain(`report: ${reportFile}`);
  const sidecar = parseStatsFile(fs.readFileSync(`${output}.stats.jsonl`, "utf8"));
  expect(sidecar.summary).toBeDefined();
  expect(fs.readFileSync(`${output}.stats.jsonl`, "utf8")).not.toContain(KEY);

  const page = await browser.newPage();
  await page.goto(`file://${reportFile}`);
  // The rate chart is drawn, as wide as a person would see it, one point per second of the run.
  const chart = page.locator("#rate-chart");
  expect((await chart.boundingBox())!.width).toBeGreaterThan(400);
  const sent = chart.locator('polyline[data-series="sent req/s"]');
  const points = (await sent.getAttribute("points"))!.trim().split(/\s+/);
  const seconds = Math.max(
    sidecar.seconds.at(-1)!.s + 1,
    Math.ceil(sidecar.summary!.elapsed_ms / 1000),
  );
  expect(points.length).toBe(seconds);
  expect(await chart.locator('polyline[data-series^="target 50"]').count()).toBe(1);
  // A red dot for every second that had quota 429s.
  const with429 = sidecar.seconds.filter((s) => (s.rl ?? 0) > 0).length;
  expect(with429).toBeGreaterThan(0);
  expect(await chart.locator('circle[data-marker="429"]').count()).toBe(with429);

  // The numbers match what the CLI printed.
  const text = async (k: string) => (await page.locator(`[data-k="${k}"]`).first().textContent())!;
  const num = async (k: string) => Number((await text(k)).replace(/,/g, ""));
  const ok = said(r.stderr, /ok (\d+) →/);
  expect(await num("ok")).toBe(ok);
  expect(ok).toBe(readJsonl(output).length);
  const failedAll = said(r.stderr, /failed (\d+) →/); // failed + invalid, without text included
  expect((await num("failed")) + (await num("no_text")) + (await num("invalid"))).toBe(failedAll);
  expect(await num("no_text")).toBeGreaterThan(0);
  expect(await num("failed_server_error")).toBeGreaterThan(0);
  expect(await num("requests")).toBe(said(r.stderr, /(\d+) requests \(/));
  expect(await num("rate_limited")).toBe(said(r.stderr, /(\d+) quota 429s absorbed/));
  expect(await num("tokens_in")).toBe(said(r.stderr, /tokens in (\d+)/));
  expect(await num("tokens_out")).toBe(said(r.stderr, /out (\d+)/));
  expect(await text("p50")).toBe(`${sidecar.summary!.latency_ms.p50} ms`);
  expect(await page.locator("#command").textContent()).toContain("--rate-limit 50");
  // Attempts per item: the 429s and the retried 503s took two.
  expect(
    Number(await page.locator('#attempt-chart rect[data-label="2"]').getAttribute("data-value")),
  )
    .toBeGreaterThan(0);
  await page.close();
}, 60_000);

test("report <output> rebuilds the page after the fact; a missing sidecar is a usage error", async () => {
  const output = path.join(dir, "out.jsonl");
  const to = path.join(dir, "again.html");
  const r = await cli(["report", output, "--out", to]);
  expect(r.code).toBe(0);
  expect(r.stdout).toBe(`report: ${to}\n`);
  const page = await browser.newPage();
  await page.goto(`file://${to}`);
  expect(await page.locator("#rate-chart polyline").count()).toBeGreaterThan(2);
  await page.close();
  const missing = await cli(["report", path.join(dir, "nothing.jsonl")]);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toContain("nothing.jsonl.stats.jsonl");
});

test(
  "a run stopped by Ctrl-C gets a report with its unsent lines and the resume command",
  async () => {
    const input = path.join(dir, "stop.jsonl");
    fs.writeFileSync(
      input,
      Array.from({ length: 300 }, (_, i) => JSON.stringify({ id: `s${i}`, prompt: `q ${i}` }))
        .join("\n") + "\n",
    );
    const output = path.join(dir, "stop-out.jsonl");
    const args = [
      "run",
      input,
      "--provider",
      "openai",
      "--base-url",
      `${mock.url}/v1`,
      "--rate-limit",
      "40",
      "-o",
      output,
    ];
    const p = spawnCli(args, { OPENAI_API_KEY: KEY });
    const sidecar = `${output}.stats.jsonl`;
    // Stop once the sidecar has recorded a few seconds.
    while (
      !fs.existsSync(sidecar) ||
      parseStatsFile(fs.readFileSync(sidecar, "utf8")).seconds.length < 3
    ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    process.kill(-p.pid!, "SIGINT");
    const [stderr, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
    expect(code).toBe(130);
    const printed = /resume with:\n {2}(.+)\n/.exec(stderr)![1];
    const summary = parseStatsFile(fs.readFileSync(sidecar, "utf8")).summary!;
    expect(summary.stopped).toBe(true);
    expect(summary.resume).toBe(printed);
    expect(summary.unsent).toBeGreaterThan(0);

    const built = await cli(["report", output]);
    expect(built.code).toBe(0);
    const page = await browser.newPage();
    await page.goto(`file://${output}.report.html`);
    expect(await page.locator("#resume").textContent()).toBe(printed);
    expect(Number(await page.locator('[data-k="ok"]').first().textContent())).toBe(summary.ok);
    expect(Number(await page.locator('[data-k="unsent"]').textContent())).toBe(summary.unsent);
    expect(await page.locator(".warn").textContent()).toContain("Stopped");

    // The resume appends a second run to the sidecar; its report is of that run.
    const again = await cli([...args, "--resume"], { OPENAI_API_KEY: KEY });
    expect(again.code).toBe(0);
    expect((await cli(["report", output])).code).toBe(0);
    await page.goto(`file://${output}.report.html`);
    expect(await page.locator(".meta").first().textContent()).toContain("run 2 on this output");
    expect(Number(await page.locator('[data-k="skipped"]').textContent())).toBe(summary.ok);
    await page.close();
  },
  60_000,
);
