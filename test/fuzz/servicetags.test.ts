import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ServiceTagsValidationError } from "../../src/errors.js";
import { parseServiceTags } from "../../src/servicetags/parse.js";
import { CLOUDS, serviceTagsFileSchema, type Cloud, type ServiceTagsFile } from "../../src/servicetags/schema.js";
import { readServiceTagsFixture } from "../support/servicetags-server.js";
import {
  damage,
  deepNesting,
  hostileNumber,
  hostileString,
  hostileValue,
  mutate,
  mutationArb,
  parsesOrRejects,
  PROTOTYPE_KEYS,
  expectPrototypeUntouchedAfterAll,
  textDamageArb,
  toJsonText,
  withOwnKey,
  type Verdict,
} from "./hostile.js";

/**
 * `parseServiceTags` reads whatever a download site answers. Whatever it is, the parser returns
 * a file that satisfies the schema or throws `ServiceTagsValidationError`, quickly.
 */

const FIXTURE_TEXT = readServiceTagsFixture("ServiceTags_Public_20251020.acr.json").toString("utf8");
/** The real file cut to a few tags (verbatim values), so that each mutation run stays cheap. */
const SEED = (() => {
  const file = JSON.parse(FIXTURE_TEXT.replace(/^\uFEFF/, "")) as { changeNumber: number; values: unknown[] };
  return { ...file, values: file.values.slice(0, 4) };
})();

const verdicts: Verdict[] = [];

expectPrototypeUntouchedAfterAll();

function check(text: string, expectedCloud?: Cloud): Verdict {
  const verdict = parsesOrRejects(
    () =>
      parseServiceTags(text, {
        location: "https://download.example/ServiceTags_Public_20251020.json",
        ...(expectedCloud === undefined ? {} : { expectedCloud }),
      }),
    [ServiceTagsValidationError],
    (file) => {
      expectValidFile(file, expectedCloud);
    },
  );
  verdicts.push(verdict);
  return verdict;
}

function expectValidFile(file: ServiceTagsFile, expectedCloud: Cloud | undefined): void {
  expect(Object.getPrototypeOf(file)).toBe(Object.prototype);
  expect(serviceTagsFileSchema.safeParse(file).success).toBe(true);
  expect(CLOUDS).toContain(file.cloud);
  if (expectedCloud !== undefined) expect(file.cloud).toBe(expectedCloud);
  for (const tag of file.values) {
    expect(Object.getPrototypeOf(tag)).toBe(Object.prototype);
    expect(Number.isSafeInteger(tag.properties.changeNumber) && tag.properties.changeNumber >= 0).toBe(true);
    expect(tag.properties.addressPrefixes.every((prefix) => typeof prefix === "string")).toBe(true);
  }
}

/** Tag-shaped values whose fields are sometimes right, sometimes missing, sometimes hostile. */
const tagLike = fc.record(
  {
    name: fc.oneof(
      fc.constantFrom("AzureContainerRegistry.JapanEast", "AzureContainerRegistry"),
      hostileString,
      hostileValue,
    ),
    id: fc.oneof(fc.constant("AzureContainerRegistry.JapanEast"), hostileValue),
    properties: fc.oneof(
      fc.record(
        {
          changeNumber: fc.oneof(fc.nat(), hostileNumber, hostileValue),
          region: fc.oneof(fc.constant("japaneast"), hostileValue),
          regionId: fc.oneof(fc.nat(), hostileValue),
          platform: fc.oneof(fc.constant("Azure"), hostileValue),
          systemService: fc.oneof(fc.constant("AzureContainerRegistry"), hostileValue),
          addressPrefixes: fc.oneof(
            fc.array(fc.oneof(fc.ipV4(), fc.ipV6(), hostileString), { maxLength: 6 }),
            hostileValue,
          ),
          networkFeatures: fc.oneof(
            fc.constant(null),
            fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
            hostileValue,
          ),
        },
        { requiredKeys: [] },
      ),
      hostileValue,
    ),
  },
  { requiredKeys: [] },
);

const fileLike = fc.record(
  {
    changeNumber: fc.oneof(fc.nat(), hostileNumber, hostileValue),
    cloud: fc.oneof(fc.constantFrom(...CLOUDS), fc.constantFrom("public", "AzureCloud", ""), hostileValue),
    values: fc.oneof(fc.array(tagLike, { maxLength: 4 }), hostileValue, deepNesting),
  },
  { requiredKeys: [] },
);

describe("parseServiceTags on hostile input", () => {
  it("returns a valid file or throws ServiceTagsValidationError for arbitrary strings", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: "binary", maxLength: 300 }),
          fc.string({ unit: "grapheme", maxLength: 300 }),
          hostileString,
        ),
        (text) => {
          check(text);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("returns a valid file or throws ServiceTagsValidationError for arbitrary JSON values", () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue({ maxDepth: 4 }), hostileValue, deepNesting), (value) => {
        check(toJsonText(value));
      }),
      { numRuns: 200 },
    );
  });

  it("validates every field of tag-shaped documents, whatever their types", () => {
    fc.assert(
      fc.property(fileLike, fc.option(fc.constantFrom(...CLOUDS), { nil: undefined }), (file, expectedCloud) => {
        check(toJsonText(file), expectedCloud);
      }),
      { numRuns: 200 },
    );
  });

  it("survives a real file with fields deleted, retyped, deeply nested or named after the prototype", () => {
    fc.assert(
      fc.property(fc.array(mutationArb, { minLength: 1, maxLength: 4 }), (mutations) => {
        check(toJsonText(mutate(SEED, mutations)));
      }),
      { numRuns: 250 },
    );
  });

  it("survives a real file's text truncated, spliced, BOM-prefixed, CRLF'd or behind markup", () => {
    const seedText = JSON.stringify(SEED, null, 2);
    fc.assert(
      fc.property(fc.array(textDamageArb, { minLength: 1, maxLength: 3 }), (changes) => {
        check(changes.reduce(damage, seedText));
      }),
      { numRuns: 200 },
    );
  });

  it("ends up both accepting and rejecting mutated files (the generators reach both sides)", () => {
    expect(verdicts).toContain("valid");
    expect(verdicts).toContain("rejected");
  });
});

describe("parseServiceTags on specific hostile documents", () => {
  it("reads the real file with a BOM and CRLF line endings as the same file", () => {
    const plain = parseServiceTags(FIXTURE_TEXT, { location: "fixture" });
    const odd = parseServiceTags(`\uFEFF${FIXTURE_TEXT.replace(/\r?\n/g, "\r\n")}`, { location: "fixture" });
    expect(odd).toEqual(plain);
    expect(odd.values.length).toBeGreaterThan(60);
  });

  it.each(PROTOTYPE_KEYS)(
    "drops a top-level '%s' key without touching Object.prototype or the result's prototype",
    (key) => {
      const text = toJsonText(withOwnKey({ ...SEED }, key, { polluted: true, changeNumber: -1 }));
      const file = parseServiceTags(text, { location: "fixture" });
      expect(Object.getPrototypeOf(file)).toBe(Object.prototype);
      expect((file as unknown as Record<string, unknown>).polluted).toBeUndefined();
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(file.changeNumber).toBe(SEED.changeNumber);
    },
  );

  it.each([
    ["an HTML bot page", "<HTML><HEAD><TITLE>Access Denied</TITLE></HEAD></HTML>", /returned HTML/],
    ["HTML after a BOM and whitespace", "\uFEFF \r\n\t<!DOCTYPE html><html></html>", /returned HTML/],
    ["an empty body", "", /not valid JSON/],
    ["a lone BOM", "\uFEFF", /not valid JSON/],
    ["a number out of range", '{"changeNumber":1e999,"cloud":"Public","values":[]}', /changeNumber/],
    ["a change number past 2^53", '{"changeNumber":9007199254740993,"cloud":"Public","values":[]}', /changeNumber/],
    ["a negative change number", '{"changeNumber":-1,"cloud":"Public","values":[]}', /changeNumber/],
    [
      "a 100,000-deep array as values",
      `{"changeNumber":1,"cloud":"Public","values":${"[".repeat(100_000)}${"]".repeat(100_000)}}`,
      /values/,
    ],
    [
      "a megabyte-long prefix",
      `{"changeNumber":1,"cloud":"Public","values":[{"name":"A","id":"A","properties":{"changeNumber":1,"region":"","platform":"Azure","systemService":"","addressPrefixes":["${"1".repeat(1_000_000)}"]}}]}`,
      /addressPrefixes/,
    ],
  ])("rejects %s with a ServiceTagsValidationError", (_, text, message) => {
    expect(check(text)).toBe("rejected");
    expect(() => parseServiceTags(text, { location: "x" })).toThrow(message);
  });

  it("accepts unknown fields nested 100,000 deep (they are tolerated, not walked)", () => {
    const text = `{"changeNumber":1,"cloud":"Public","values":[],"future":${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}}`;
    expect(check(text)).toBe("valid");
  });
});
