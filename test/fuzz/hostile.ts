import fc from "fast-check";
import { afterAll, beforeAll, expect } from "vitest";
import { AllowlistSyncError } from "../../src/errors.js";

/**
 * Shared pieces of the fuzz tests: hostile JSON building blocks, JSON-tree mutations of real
 * documents, and the one property every parser must keep: a valid value or a typed error,
 * quickly, every time.
 */

/**
 * A single parse taking longer than this is treated as a hang (catastrophic backtracking,
 * quadratic loops over a hostile input). It is a hang detector, not a performance assertion:
 * ordinary inputs parse in well under a millisecond, the largest generated ones in tens.
 */
export const HANG_MS = 2_000;

/** An error class of the house: `ServiceTagsValidationError`, `LedgerCorruptError`, ... */
export type ErrorClass = abstract new (...args: never[]) => AllowlistSyncError;

/** Error messages end up in logs and HTTP bodies: a hostile input must not be echoed in bulk. */
const MAX_MESSAGE_CHARS = 2_000;

export type Verdict = "valid" | "rejected";

/**
 * Runs `parse` once. A returned value is passed to `validate`; a thrown error must be one of
 * `allowed` (never a TypeError, RangeError or other stray error) with a message that is bounded
 * and carries no stack frame.
 */
export function parsesOrRejects<T>(
  parse: () => T,
  allowed: readonly ErrorClass[],
  validate: (value: T) => void,
): Verdict {
  const started = performance.now();
  let outcome: { ok: true; value: T } | { ok: false; error: unknown };
  try {
    outcome = { ok: true, value: parse() };
  } catch (error) {
    outcome = { ok: false, error };
  }
  checkDuration(started);
  return judge(outcome, allowed, validate);
}

/** `parsesOrRejects` for an asynchronous reader (the file store). */
export async function parsesOrRejectsAsync<T>(
  parse: () => Promise<T>,
  allowed: readonly ErrorClass[],
  validate: (value: T) => void,
): Promise<Verdict> {
  const started = performance.now();
  let outcome: { ok: true; value: T } | { ok: false; error: unknown };
  try {
    outcome = { ok: true, value: await parse() };
  } catch (error) {
    outcome = { ok: false, error };
  }
  checkDuration(started);
  return judge(outcome, allowed, validate);
}

function checkDuration(started: number): void {
  const elapsed = performance.now() - started;
  if (elapsed > HANG_MS)
    throw new Error(`One parse took ${Math.round(elapsed)} ms (> ${HANG_MS} ms): treated as a hang.`);
}

function judge<T>(
  outcome: { ok: true; value: T } | { ok: false; error: unknown },
  allowed: readonly ErrorClass[],
  validate: (value: T) => void,
): Verdict {
  if (outcome.ok) {
    validate(outcome.value);
    return "valid";
  }
  const { error } = outcome;
  if (!allowed.some((cls) => error instanceof cls)) {
    const name = error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error);
    throw new Error(`Expected ${allowed.map((cls) => cls.name).join(" or ")}, got ${name}`, { cause: error });
  }
  expectWellFormed(error as AllowlistSyncError);
  return "rejected";
}

/** What every typed error must look like to the operator and to the HTTP caller. */
export function expectWellFormed(error: AllowlistSyncError): void {
  expect(error.message.length).toBeGreaterThan(0);
  expect(error.message.length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS);
  expect(error.message).not.toMatch(/\n\s+at /);
  expect(typeof error.code).toBe("string");
  expect(() => JSON.stringify(error.toJSON())).not.toThrow();
  expect(error.describe().length).toBeGreaterThan(0);
}

// ---- prototype pollution ------------------------------------------------------------------------

/** A fingerprint of `Object.prototype`: own keys and what a fresh object inherits for the usual bait names. */
export function prototypeFingerprint(): string {
  const probe: Record<string, unknown> = {};
  return JSON.stringify({
    keys: Reflect.ownKeys(Object.prototype).map(String).sort(),
    inherited: PROTOTYPE_BAIT.map((key) => typeof probe[key]),
  });
}

/** Asserts, once the test file is done, that no hostile input changed `Object.prototype`. */
export function expectPrototypeUntouchedAfterAll(): void {
  let fingerprint = "";
  beforeAll(() => {
    fingerprint = prototypeFingerprint();
  });
  afterAll(() => {
    expect(prototypeFingerprint()).toBe(fingerprint);
  });
}

export const PROTOTYPE_KEYS = ["__proto__", "constructor", "prototype"] as const;
const PROTOTYPE_BAIT = [
  "polluted",
  "isAdmin",
  "changeNumber",
  "cloud",
  "values",
  "schemaVersion",
  "ledgers",
  "registry",
  "format",
];

/** An object with an own property named `key` even for `__proto__` (as `JSON.parse` makes it). */
export function withOwnKey(target: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  Object.defineProperty(target, key, { value, enumerable: true, configurable: true, writable: true });
  return target;
}

// ---- hostile values -----------------------------------------------------------------------------

/** Numbers JSON can carry that break naive code: huge, tiny, negative zero, past 2^53, non-integers. */
export const hostileNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(
    0,
    -0,
    -1,
    1.5,
    2 ** 31,
    2 ** 32,
    2 ** 53,
    2 ** 53 + 2,
    -(2 ** 53),
    Number.MAX_VALUE,
    Number.MIN_VALUE,
    1e308,
    -1e308,
    1e-300,
  ),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
);

/** Strings that are long, odd or markup-shaped. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom(
    "",
    " ",
    "\u0000",
    "\uFEFF",
    "\uD800",
    "<html>",
    "<!DOCTYPE html>",
    "../../etc/passwd",
    "__proto__",
    "null",
    "1.2.3.4/33",
    "Public",
    "AzureContainerRegistry.JapanEast",
  ),
  fc.integer({ min: 1_000, max: 200_000 }).map((n) => "a".repeat(n)),
  fc.integer({ min: 1_000, max: 50_000 }).map((n) => "1.".repeat(n)),
);

/** Scalars and small containers of them, with prototype keys sprinkled in. */
export const hostileValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", maxDepth: 3 },
    fc.constant(null),
    fc.boolean(),
    hostileNumber,
    hostileString,
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(
      fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom(...PROTOTYPE_KEYS, "toString", "valueOf")),
      tie("value"),
      { maxKeys: 4 },
    ),
    fc.tuple(fc.constantFrom(...PROTOTYPE_KEYS), tie("value")).map(([key, value]) => withOwnKey({}, key, value)),
    // `String(value)` throws on these: a classic way to turn a validation error into a TypeError.
    fc.constant(null).map(() => ({ toString: 1, valueOf: 1 })),
    fc.constant(null).map(() => ({ toString: {} })),
  ),
})).value;

/**
 * Nesting far deeper than any real document: JSON.parse copes, recursive code (JSON.stringify,
 * naive walkers) overflows the stack. Stands in the tree as a marker that `toJsonText` expands,
 * because the tree itself could not be serialised.
 */
export const deepNesting: fc.Arbitrary<string> = fc
  .tuple(fc.integer({ min: 5_000, max: 12_000 }), fc.constantFrom("a", "o"))
  .map(([depth, kind]) => `__deep_nesting_${depth}_${kind}__`);

const DEEP_MARKER = /"__deep_nesting_(\d+)_([ao])__"/g;

// ---- mutations of real documents ----------------------------------------------------------------

export type Mutation =
  | { readonly kind: "delete"; readonly path: readonly number[] }
  | { readonly kind: "replace"; readonly path: readonly number[]; readonly value: unknown }
  | { readonly kind: "add"; readonly path: readonly number[]; readonly key: string; readonly value: unknown };

const pathArb = fc.array(fc.nat(), { maxLength: 6 });

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  pathArb.map((path): Mutation => ({ kind: "delete", path })),
  fc
    .record({
      path: pathArb,
      value: fc.oneof({ weight: 4, arbitrary: hostileValue }, { weight: 1, arbitrary: deepNesting }),
    })
    .map((m): Mutation => ({ kind: "replace", ...m })),
  fc
    .record({
      path: pathArb,
      key: fc.oneof(fc.constantFrom(...PROTOTYPE_KEYS), fc.string({ maxLength: 12 })),
      value: hostileValue,
    })
    .map((m): Mutation => ({ kind: "add", ...m })),
);

/** Applies mutations to a deep copy of `document`; paths pick children by index modulo their count. */
export function mutate(document: unknown, mutations: readonly Mutation[]): unknown {
  const root = { doc: fresh(document) };
  for (const mutation of mutations) {
    // Walk from the root holder so that the whole document can be replaced too.
    let parent: Record<string, unknown> | unknown[] = root;
    let key: string | number = "doc";
    for (const step of mutation.path) {
      const current: unknown = (parent as Record<string | number, unknown>)[key];
      const children = childKeys(current);
      if (children.length === 0) break;
      parent = current as Record<string, unknown> | unknown[];
      key = children[step % children.length] as string | number;
    }
    const holder = parent as Record<string | number, unknown>;
    switch (mutation.kind) {
      case "delete":
        if (Array.isArray(holder) && typeof key === "number") holder.splice(key, 1);
        else Reflect.deleteProperty(holder, key);
        break;
      case "replace":
        withOwnKey(holder, String(key), fresh(mutation.value));
        break;
      case "add": {
        const target = holder[key];
        if (typeof target === "object" && target !== null && !Array.isArray(target))
          withOwnKey(target as Record<string, unknown>, mutation.key, fresh(mutation.value));
        else withOwnKey(holder, String(key), withOwnKey({}, mutation.key, fresh(mutation.value)));
        break;
      }
    }
  }
  return root.doc;
}

/** A private copy (through JSON, which keeps `__proto__` as an own key), so mutations never alias. */
function fresh(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value ?? null)) as unknown;
}

function childKeys(value: unknown): (string | number)[] {
  if (Array.isArray(value)) return value.map((_, index) => index);
  if (typeof value === "object" && value !== null) return Object.keys(value);
  return [];
}

/** Serialises a (mutated) document, expanding the deep-nesting markers into real nesting. */
export function toJsonText(value: unknown): string {
  return ((JSON.stringify(value) as string | undefined) ?? "null").replace(
    DEEP_MARKER,
    (_, depth: string, kind: string) => {
      const n = Number(depth);
      return kind === "a" ? `${"[".repeat(n)}${"]".repeat(n)}` : `${'{"a":'.repeat(n)}1${"}".repeat(n)}`;
    },
  );
}

// ---- text-level damage --------------------------------------------------------------------------

/** Damage to a document's text: truncation, a replaced span, a BOM, markup in front, CRLF. */
export type TextDamage =
  | { readonly kind: "truncate"; readonly at: number }
  | { readonly kind: "splice"; readonly at: number; readonly remove: number; readonly insert: string }
  | { readonly kind: "bom" }
  | { readonly kind: "html-prefix"; readonly html: string }
  | { readonly kind: "crlf" };

export const textDamageArb: fc.Arbitrary<TextDamage> = fc.oneof(
  fc.nat().map((at): TextDamage => ({ kind: "truncate", at })),
  fc
    .record({
      at: fc.nat(),
      remove: fc.nat({ max: 8 }),
      insert: fc.oneof(
        fc.string({ unit: "binary", maxLength: 6 }),
        fc.constantFrom('"', "{", "]", ",", ":", "1e999", "-", "\\u"),
      ),
    })
    .map((d): TextDamage => ({ kind: "splice", ...d })),
  fc.constant<TextDamage>({ kind: "bom" }),
  fc
    .constantFrom("<html><body>Access Denied</body></html>", "  \r\n<!DOCTYPE html>", '<?xml version="1.0"?>')
    .map((html): TextDamage => ({ kind: "html-prefix", html })),
  fc.constant<TextDamage>({ kind: "crlf" }),
);

export function damage(text: string, change: TextDamage): string {
  switch (change.kind) {
    case "truncate":
      return text.slice(0, change.at % (text.length + 1));
    case "splice": {
      const at = change.at % (text.length + 1);
      return text.slice(0, at) + change.insert + text.slice(at + change.remove);
    }
    case "bom":
      return `\uFEFF${text}`;
    case "html-prefix":
      return change.html + text;
    case "crlf":
      return text.replace(/\n/g, "\r\n");
  }
}
