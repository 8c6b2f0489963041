// Tests of src/duration.ts: durations typed on a command line, and the compact display form.
import { expect, test } from "bun:test";
import { formatDuration, parseDurationMs } from "../src/duration.ts";

test("parseDurationMs() reads each unit", () => {
  expect(parseDurationMs("500ms")).toBe(500);
  expect(parseDurationMs("30s")).toBe(30_000);
  expect(parseDurationMs("2m")).toBe(120_000);
  expect(parseDurationMs("1.5h")).toBe(5_400_000);
});

test("parseDurationMs() reads a bare number as seconds", () => {
  expect(parseDurationMs("90")).toBe(90_000);
  expect(parseDurationMs("0.5")).toBe(500);
  expect(parseDurationMs(".5")).toBe(500);
});

test("parseDurationMs() accepts fractions and spaces around the value and unit", () => {
  expect(parseDurationMs("1.5m")).toBe(90_000);
  expect(parseDurationMs(" 30 s ")).toBe(30_000);
  expect(parseDurationMs("0.25s")).toBe(250);
});

test("parseDurationMs() rejects what is not a positive duration, naming the value", () => {
  for (const text of ["", "0", "0s", "-5s", "abc", "5d", "1e3", "s", "5 5", "Infinity", "1.s"]) {
    expect(() => parseDurationMs(text)).toThrow(RangeError);
    expect(() => parseDurationMs(text)).toThrow(`got '${text}'`);
  }
});

test("parseDurationMs() rejects a number too large to be finite", () => {
  expect(() => parseDurationMs("9".repeat(400))).toThrow(RangeError);
});

test("formatDuration() uses ms below a second", () => {
  expect(formatDuration(0)).toBe("0ms");
  expect(formatDuration(850)).toBe("850ms");
  expect(formatDuration(12.4)).toBe("12ms");
});

test("formatDuration() uses seconds with one decimal below a minute", () => {
  expect(formatDuration(1000)).toBe("1.0s");
  expect(formatDuration(12_345)).toBe("12.3s");
  expect(formatDuration(59_900)).toBe("59.9s");
});

test("formatDuration() uses minutes and zero-padded seconds below an hour", () => {
  expect(formatDuration(60_000)).toBe("1m00s");
  expect(formatDuration(245_000)).toBe("4m05s");
  expect(formatDuration(3_599_000)).toBe("59m59s");
});

test("formatDuration() uses hours and zero-padded minutes from an hour on", () => {
  expect(formatDuration(3_600_000)).toBe("1h00m");
  expect(formatDuration(7_620_000)).toBe("2h07m");
  expect(formatDuration(100 * 3_600_000)).toBe("100h00m");
});

test("formatDuration() shows ? for a duration that is not finite", () => {
  expect(formatDuration(NaN)).toBe("?");
  expect(formatDuration(Infinity)).toBe("?");
});

test("formatDuration() moves to the next unit when rounding reaches it", () => {
  expect(formatDuration(999.6)).toBe("1.0s");
  expect(formatDuration(59_960)).toBe("1m00s");
  expect(formatDuration(3_599_700)).toBe("1h00m");
});
