import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { APP_SETTINGS, loadSettings, type Settings } from "../../src/config/settings.js";
import { ConfigError } from "../../src/errors.js";
import { parseRegistryId } from "../../src/registry/resource-id.js";
import { CLOUDS } from "../../src/servicetags/schema.js";
import {
  hostileString,
  parsesOrRejects,
  PROTOTYPE_KEYS,
  expectPrototypeUntouchedAfterAll,
  withOwnKey,
  type Verdict,
} from "./hostile.js";

/**
 * `loadSettings` reads app settings and CLI flags: whatever the environment holds, it returns
 * settings the rest of the service can trust or throws ConfigError naming the setting.
 */

const verdicts: Verdict[] = [];

expectPrototypeUntouchedAfterAll();

const SETTING_NAMES = APP_SETTINGS.map((setting) => setting.name);

function check(env: Readonly<Record<string, string | undefined>>): Verdict {
  const verdict = parsesOrRejects(() => loadSettings(env), [ConfigError], expectTrustworthy);
  verdicts.push(verdict);
  return verdict;
}

function expectTrustworthy(settings: Settings): void {
  // Without TARGET_REGISTRIES only discovery can name the registries.
  if (settings.discovery.tag === undefined) expect(settings.targets.length).toBeGreaterThan(0);
  expect(new Set(settings.targets.map((t) => t.ref.id.toLowerCase())).size).toBe(settings.targets.length);
  for (const target of settings.targets) {
    expect(parseRegistryId(target.ref.id)).toEqual(target.ref);
    for (const region of target.regions ?? []) expect(region).toMatch(/^[a-z0-9]{2,40}$/);
    const { policy } = target;
    expect(Number.isInteger(policy.headroom) && policy.headroom >= 0).toBe(true);
    expect(
      Number.isInteger(policy.minPrefixLength) && policy.minPrefixLength >= 0 && policy.minPrefixLength <= 32,
    ).toBe(true);
    expect(policy.maxRemovalShare >= 0 && policy.maxRemovalShare <= 1).toBe(true);
    for (const value of [policy.maxExtraAddresses, policy.maxExtraRatio])
      if (value !== undefined) expect(Number.isFinite(value) && value >= 0).toBe(true);
    expect(typeof policy.writeWhenDefaultAllow).toBe("boolean");
  }
  expect(CLOUDS).toContain(settings.cloud);
  expect(settings.armEndpoint).toMatch(/^https:\/\/[^/]/);
  for (const value of [
    settings.serviceTags.timeoutMs,
    settings.serviceTags.maxBytes,
    settings.serviceTags.retries,
    settings.serviceTags.minAcrTags,
    settings.operationTimeoutMs,
    settings.lockWaitMs,
  ]) {
    expect(Number.isSafeInteger(value) && value >= 0).toBe(true);
  }
  expect(settings.ledgerContainer).toMatch(/^[a-z0-9-]{3,63}$/);
}

const registryId = fc
  .tuple(fc.uuid(), fc.stringMatching(/^[-\w.()]{1,12}$/), fc.stringMatching(/^[a-zA-Z0-9]{5,12}$/), fc.boolean())
  .map(([sub, rg, name, upper]) => {
    const id = `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.ContainerRegistry/registries/${name}`;
    return upper ? id.toUpperCase() : id;
  });

const overrides = fc.record(
  {
    id: fc.oneof({ weight: 4, arbitrary: registryId }, { weight: 1, arbitrary: hostileString }),
    regions: fc.oneof(
      fc.array(fc.constantFrom("eastus", "JapanEast", "x", "", "east us"), { maxLength: 3 }),
      fc.constant("eastus"),
    ),
    includeReplicas: fc.oneof(fc.boolean(), fc.constant("true")),
    pinnedRules: fc.array(fc.oneof(fc.ipV4(), fc.constantFrom("203.0.113.0/24", "1.2.3.4/99", "::1")), {
      maxLength: 2,
    }),
    headroom: fc.oneof(fc.nat({ max: 2000 }), fc.double()),
    minPrefixLength: fc.oneof(fc.integer({ min: -2, max: 40 }), fc.constant(null)),
    maxExtraAddresses: fc.oneof(fc.nat(), fc.constant(Number.POSITIVE_INFINITY), fc.constant(-1)),
    maxExtraRatio: fc.double(),
    maxRemovalShare: fc.double({ min: -1, max: 2 }),
    writeWhenDefaultAllow: fc.boolean(),
    unknownKey: fc.string({ maxLength: 4 }),
  },
  { requiredKeys: ["id"] },
);

const targetRegistries = fc.oneof(
  fc.array(registryId, { minLength: 1, maxLength: 3 }).map((ids) => ids.join(",")),
  fc.array(fc.oneof(registryId, fc.constantFrom("", " ", ",")), { maxLength: 4 }).map((ids) => ids.join(",")),
  fc.array(fc.oneof(registryId, overrides), { maxLength: 3 }).map((entries) => JSON.stringify(entries)),
  fc.array(overrides, { minLength: 1, maxLength: 2 }).map((entries) => JSON.stringify(entries).slice(0, -1)),
  hostileString,
  fc.constant(undefined),
);

/** Per setting: plausible values, values just out of range, and hostile text. */
const settingValue = (name: string): fc.Arbitrary<string | undefined> => {
  if (name === "TARGET_REGISTRIES") return targetRegistries;
  const info = APP_SETTINGS.find((setting) => setting.name === name);
  return fc.oneof(
    fc.constant(undefined),
    fc.constantFrom(
      info?.example ?? "",
      info?.default ?? "",
      "",
      " ",
      "0",
      "-1",
      "1e400",
      "NaN",
      "Infinity",
      "0x10",
      "1.5",
      "true",
      "yes",
      "https://",
      "http://127.0.0.1",
      "https://127.0.0.1:1/",
    ),
    fc.integer().map(String),
    fc.double().map(String),
    hostileString,
  );
};

const env = fc.record(Object.fromEntries(SETTING_NAMES.map((name) => [name, settingValue(name)])), {
  requiredKeys: [],
});

describe("loadSettings on hostile environments", () => {
  it("returns trustworthy settings or throws ConfigError for any environment", () => {
    fc.assert(
      fc.property(
        env,
        fc.dictionary(
          fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom(...PROTOTYPE_KEYS)),
          fc.string({ maxLength: 10 }),
          { maxKeys: 3 },
        ),
        (settings, extra) => {
          check({ ...extra, ...settings });
        },
      ),
      { numRuns: 300 },
    );
  });

  it("reads mostly-valid environments with one setting gone wrong", () => {
    const id =
      "/subscriptions/00000000-0000-0000-0000-0000000000f1/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/fuzzacr";
    fc.assert(
      fc.property(
        fc.constantFrom(...SETTING_NAMES).chain((name) => fc.tuple(fc.constant(name), settingValue(name))),
        ([name, value]) => {
          check({ TARGET_REGISTRIES: id, [name]: value });
        },
      ),
      { numRuns: 200 },
    );
  });

  it.each(PROTOTYPE_KEYS)("ignores a '%s' key in the environment and in a TARGET_REGISTRIES entry", (key) => {
    const id =
      "/subscriptions/00000000-0000-0000-0000-0000000000f1/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/fuzzacr";
    const source = withOwnKey({ TARGET_REGISTRIES: id }, key, "x") as Record<string, string>;
    expect(loadSettings(source).targets).toHaveLength(1);
    // Inside an entry the schema is strict: an unknown key is an error that names it, not a silent no-op.
    const entry = `[{"id":"${id}","${key}":{"headroom":0}}]`;
    expect(check({ TARGET_REGISTRIES: entry })).toBe("rejected");
  });

  it.each([",", " , ", ",,,", "\t"])("refuses a TARGET_REGISTRIES of %j that names no registry", (value) => {
    expect(() => loadSettings({ TARGET_REGISTRIES: value })).toThrow(ConfigError);
    expect(() => loadSettings({ TARGET_REGISTRIES: value })).toThrow(/TARGET_REGISTRIES/);
  });

  it("names a 200,000-character TARGET_REGISTRIES without echoing it in full", () => {
    expect(check({ TARGET_REGISTRIES: "x".repeat(200_000) })).toBe("rejected");
    expect(() => loadSettings({ TARGET_REGISTRIES: "x".repeat(200_000) })).toThrow(
      /TARGET_REGISTRIES 'x{300}…' is not a container registry resource ID/,
    );
  });

  it("ends up both accepting and rejecting (the generators reach both sides)", () => {
    expect(verdicts).toContain("valid");
    expect(verdicts).toContain("rejected");
  });
});
