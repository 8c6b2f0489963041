/**
 * Makes README's screenshots in headless Chromium (see tests/_browser.ts): docs/report.png, the
 * report of a CLI run against the mock provider server with a request quota below the rate asked
 * for (so 429s, slow-downs and pauses show), and docs/live.png, the live page of a server with
 * two runs going.
 *
 *   bun scripts/screenshots.ts
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startMockProvider } from "../tests/mocks/mock_provider.ts";
import { startServer } from "../server.ts";
import { createProvider } from "../src/providers/create_provider.ts";
import { createApp } from "../src/server/app.ts";
import { main, processIo } from "../cli.ts";
import { launchBrowser } from "../tests/_browser.ts";

const root = path.resolve(import.meta.dirname!, "..");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mft-shots-"));
const browser = await launchBrowser();
try {
  // The report: 1,200 prompts asked at 80 req/s of a provider that takes 50 a second.
  const mock = await startMockProvider({
    latencyMs: 700,
    latencyJitterMs: 900,
    failureRate: 0.01,
    failureStatus: 503,
    quota: { requests: 50, windowMs: 1000 },
  });
  const input = path.join(dir, "prompts.jsonl");
  fs.writeFileSync(
    input,
    Array.from({ length: 1200 }, (_, i) =>
      JSON.stringify({
        id: `q${i}`,
        prompt: `${i % 97 === 50 ? "[[mock:blocked]] " : ""}question ${i}`,
      })).join("\n") + "\n",
  );
  const output = path.join(dir, "output.jsonl");
  const io = {
    ...processIo(),
    env: { ...process.env, OPENAI_API_KEY: `screenshot-key-${crypto.randomUUID()}` },
  };
  const code = await main([
    "run",
    input,
    "--provider",
    "openai",
    "--base-url",
    `${mock.url}/v1`,
    "--rate-limit",
    "80",
    "-o",
    output,
    "--report",
    "-q",
  ], io);
  await mock.close();
  console.log(`run exited ${code}`);
  const page = await browser.newPage({ viewport: { width: 980, height: 900 } });
  await page.goto(`file://${output}.report.html`);
  await page.screenshot({ path: path.join(root, "docs/report.png"), fullPage: true });
  await page.close();

  // The live page: a server at 40 req/s in front of a provider that takes 32 a second, two runs
  // sharing it (a few prompts always fail), seen 12 s in.
  const slow = await startMockProvider({
    latencyMs: 1200,
    latencyJitterMs: 600,
    quota: { requests: 32, windowMs: 1000 },
  });
  const app = createApp({
    provider: createProvider({
      provider: "openai",
      baseUrl: `${slow.url}/v1`,
      apiKey: `screenshot-key-${crypto.randomUUID()}`,
    }),
    rate: 40,
    maxAttempts: 2,
  });
  const server = await startServer(app.fetch, { hostname: "127.0.0.1", port: 0 });
  const post = (n: number, tag: string) =>
    fetch(`${server.url}/v1/runs`, {
      method: "POST",
      body: Array.from({ length: n }, (_, i) =>
        JSON.stringify({
          id: `${tag}${i}`,
          prompt: `${i % 41 === 20 ? "[[mock:503]] " : ""}question ${i}`,
        })).join("\n"),
    }).then((r) => r.text());
  const live = await browser.newPage({ viewport: { width: 980, height: 900 } });
  await live.goto(`${server.url}/`);
  const runs = [post(900, "a"), new Promise((r) => setTimeout(r, 3000)).then(() => post(400, "b"))];
  await new Promise((r) => setTimeout(r, 12_000));
  await live.screenshot({ path: path.join(root, "docs/live.png"), fullPage: true });
  await live.close();
  await Promise.all(runs);
  await server.close({ force: true });
  await slow.close();
  console.log("wrote docs/report.png and docs/live.png");
} finally {
  await browser.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
