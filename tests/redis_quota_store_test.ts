// Tests of src/quota_store.ts: the quota store address and the default quota name.
import { expect, test } from "bun:test";
import { defaultQuotaName, parseQuotaUrl } from "../src/quota_store.ts";

test("defaultQuotaName() is 16 hex digits that say nothing of the key", async () => {
  const key = `test-key-${crypto.randomUUID()}`;
  const name = await defaultQuotaName({ provider: "openai", model: "gpt-4o-mini", apiKey: key });
  expect(name).toMatch(/^[0-9a-f]{16}$/);
  expect(name).not.toContain(key.slice(-12, -4)); // 8 hex digits of the key
});

test("defaultQuotaName() is the same for the same quota and differs across keys and models", async () => {
  const base = {
    provider: "openai",
    model: "gpt-4o-mini",
    apiKey: `test-key-${crypto.randomUUID()}`,
  };
  const name = await defaultQuotaName(base);
  expect(await defaultQuotaName({ ...base })).toBe(name);
  // The provider's default base URL and an explicit one (with or without a trailing slash) agree.
  expect(await defaultQuotaName({ ...base, baseUrl: "https://api.openai.com/v1/" })).toBe(name);
  expect(await defaultQuotaName({ ...base, apiKey: `test-key-${crypto.randomUUID()}` })).not.toBe(
    name,
  );
  expect(await defaultQuotaName({ ...base, model: "gpt-4o" })).not.toBe(name);
  expect(await defaultQuotaName({ ...base, baseUrl: "http://127.0.0.1:8000/v1" })).not.toBe(name);
  expect(await defaultQuotaName({ ...base, provider: "gemini" })).not.toBe(name);
});

test("parseQuotaUrl() accepts redis, rediss and unix addresses and hides the password", () => {
  expect(parseQuotaUrl("redis://127.0.0.1:6379/0")).toEqual({
    target: "redis://127.0.0.1:6379/0",
    display: "redis://127.0.0.1:6379/0",
  });
  const secret = parseQuotaUrl("rediss://user:s3cret@redis.example:6380/2");
  expect(secret.target).toContain("s3cret");
  expect(secret.display).toBe("rediss://user:***@redis.example:6380/2");
  expect(parseQuotaUrl("unix:///tmp/r.sock?db=3").target).toBe("/tmp/r.sock?db=3");
});

test("parseQuotaUrl() rejects other schemes, a missing host and a non-numeric database", () => {
  expect(() => parseQuotaUrl("localhost:6379")).toThrow(/redis:, rediss: or unix:/);
  expect(() => parseQuotaUrl("127.0.0.1:6379")).toThrow(/expected redis:\/\/host:port\/N/);
  expect(() => parseQuotaUrl("http://127.0.0.1:6379")).toThrow(/scheme must be/);
  expect(() => parseQuotaUrl("not a url")).toThrow(/expected redis:\/\/host:port\/N/);
  expect(() => parseQuotaUrl("redis://127.0.0.1:6379/zero")).toThrow(/database must be a number/);
  expect(() => parseQuotaUrl("redis://:pw@127.0.0.1:6379/x")).toThrow(/:\*\*\*@/);
  expect(() => parseQuotaUrl("unix://")).toThrow(/socket path is missing/);
});
