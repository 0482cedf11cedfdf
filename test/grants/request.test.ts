import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { runClock } from "../../src/grants/clock.js";
import { parseGrantReason, parseGrantRule, parseTtl } from "../../src/grants/request.js";

describe("a grant's time to live", () => {
  it("reads minutes, hours, days and their combinations", () => {
    expect(parseTtl("30m")).toBe(30 * 60_000);
    expect(parseTtl("8h")).toBe(8 * 3_600_000);
    expect(parseTtl("1d12h")).toBe(36 * 3_600_000);
    expect(parseTtl("7d")).toBe(7 * 86_400_000);
  });

  it("refuses more than 7 days, less than a minute, and anything that is not a duration, naming the flag", () => {
    for (const text of ["7d1m", "8d", "0m", "10", "1.5h", "2 days", "", "-1h", "1e3m"]) {
      expect(() => parseTtl(text), text).toThrow(UsageError);
      expect(() => parseTtl(text), text).toThrow(/--ttl/);
    }
  });
});

describe("the rule of a grant", () => {
  const options = { allowWide: false, minPrefixLength: 16 };

  it("is one address as a /32 or a prefix, in canonical form", () => {
    expect(parseGrantRule("203.0.113.7", options)).toBe("203.0.113.7/32");
    expect(parseGrantRule(" 203.0.113.0/28 ", options)).toBe("203.0.113.0/28");
    expect(parseGrantRule("203.0.113.0/24", options)).toBe("203.0.113.0/24");
  });

  it("refuses prefixes shorter than /24 unless --allow-wide, and never wider than the service's floor", () => {
    expect(() => parseGrantRule("203.0.112.0/23", options)).toThrow(/512 addresses.*--allow-wide|wider than \/24/);
    expect(parseGrantRule("203.0.112.0/23", { ...options, allowWide: true })).toBe("203.0.112.0/23");
    expect(() => parseGrantRule("10.0.0.0/8", { ...options, allowWide: true })).toThrow(/SYNC_MIN_PREFIX_LENGTH \/16/);
  });

  it("refuses host bits, IPv6 and garbage instead of widening or guessing", () => {
    for (const text of ["203.0.113.7/24", "2001:db8::1", "300.1.1.1", "me please", "203.0.113.0/33"]) {
      expect(() => parseGrantRule(text, options), text).toThrow(UsageError);
    }
  });

  it("needs a reason of a readable length", () => {
    expect(parseGrantReason("  incident   4711\n pull ")).toBe("incident 4711 pull");
    expect(() => parseGrantReason("x")).toThrow(/--reason/);
    expect(() => parseGrantReason("y".repeat(501))).toThrow(/--reason/);
  });
});

describe("the run clock of grant expiry", () => {
  const local = new Date("2026-03-01T12:00:00.000Z");

  it("is ARM's Date header, whatever the local clock says", () => {
    expect(runClock("Sun, 01 Mar 2026 15:30:00 GMT", undefined, local).toISOString()).toBe("2026-03-01T15:30:00.000Z");
  });

  it("falls back to the local clock without a usable header", () => {
    expect(runClock(undefined, undefined, local)).toEqual(local);
    expect(runClock("yesterday-ish", undefined, local)).toEqual(local);
  });

  it("never goes back before the latest instant a run recorded in the ledger", () => {
    expect(runClock("Sun, 01 Mar 2026 11:00:00 GMT", "2026-03-01T11:30:00.000Z", local).toISOString()).toBe(
      "2026-03-01T11:30:00.000Z",
    );
    expect(runClock("Sun, 01 Mar 2026 11:00:00 GMT", "2026-03-01T10:30:00.000Z", local).toISOString()).toBe(
      "2026-03-01T11:00:00.000Z",
    );
  });
});
