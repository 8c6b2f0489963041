// Tests of src/provider_env.ts: the one lookup of provider keys and base URLs in the environment
// that run, serve, status and cancel share.
import { expect, test } from "bun:test";
import { UsageError } from "../src/errors.ts";
import {
  API_KEY_VARIABLES,
  envApiKey,
  envBaseUrl,
  providerAccess,
  providerWithKey,
} from "../src/provider_env.ts";

test("envApiKey() reads each provider's variable, GOOGLE_API_KEY as Gemini's second name", () => {
  expect(envApiKey("gemini", { GEMINI_API_KEY: "g1", GOOGLE_API_KEY: "g2" })).toBe("g1");
  expect(envApiKey("gemini", { GEMINI_API_KEY: "", GOOGLE_API_KEY: "g2" })).toBe("g2");
  expect(envApiKey("openai", { OPENAI_API_KEY: "o", GEMINI_API_KEY: "g" })).toBe("o");
  expect(envApiKey("openai", { OPENAI_API_KEY: "" })).toBeUndefined();
  expect(envApiKey("mock", { OPENAI_API_KEY: "o", GEMINI_API_KEY: "g" })).toBeUndefined();
  expect(API_KEY_VARIABLES).toEqual({ gemini: "GEMINI_API_KEY", openai: "OPENAI_API_KEY" });
});

test("envBaseUrl() reads the provider's own variable; empty counts as unset", () => {
  const env = { GEMINI_BASE_URL: "http://g", OPENAI_BASE_URL: "" };
  expect(envBaseUrl("gemini", env)).toBe("http://g");
  expect(envBaseUrl("openai", env)).toBeUndefined();
  expect(envBaseUrl("mock", env)).toBeUndefined();
});

test("providerWithKey() picks Gemini first, then OpenAI, else none", () => {
  expect(providerWithKey({ OPENAI_API_KEY: "o", GOOGLE_API_KEY: "g" })).toBe("gemini");
  expect(providerWithKey({ OPENAI_API_KEY: "o" })).toBe("openai");
  expect(providerWithKey({ GEMINI_API_KEY: "" })).toBeUndefined();
});

test("providerAccess() takes --base-url over the environment and refuses neither key nor URL", () => {
  expect(providerAccess("openai", { OPENAI_BASE_URL: "http://env/v1" }, "http://flag/v1"))
    .toEqual({ apiKey: undefined, baseUrl: "http://flag/v1" });
  expect(providerAccess("openai", { OPENAI_BASE_URL: "http://env/v1" }))
    .toEqual({ apiKey: undefined, baseUrl: "http://env/v1" });
  expect(providerAccess("gemini", { GEMINI_API_KEY: "k" })).toEqual({
    apiKey: "k",
    baseUrl: undefined,
  });
  expect(providerAccess("mock", {})).toEqual({ apiKey: undefined, baseUrl: undefined });
  expect(() => providerAccess("gemini", {})).toThrow(UsageError);
  expect(() => providerAccess("gemini", {})).toThrow(
    "GEMINI_API_KEY (or GOOGLE_API_KEY) is not set",
  );
  expect(() => providerAccess("openai", { OPENAI_API_KEY: "" })).toThrow(
    "OPENAI_API_KEY is not set (an OpenAI-compatible server without keys needs --base-url)",
  );
});
