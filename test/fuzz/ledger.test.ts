import fc from "fast-check";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LedgerCorruptError } from "../../src/errors.js";
import { createFileLedgerStore } from "../../src/ledger/file-store.js";
import {
  auditEntryToJson,
  checkWritable,
  ledgerStateToJson,
  parseAuditEntry,
  parseLedgerState,
  type DocumentLocation,
} from "../../src/ledger/schema.js";
import type { AuditEntry, LedgerState } from "../../src/ledger/types.js";
import {
  damage,
  deepNesting,
  hostileNumber,
  hostileString,
  hostileValue,
  mutate,
  mutationArb,
  parsesOrRejects,
  parsesOrRejectsAsync,
  PROTOTYPE_KEYS,
  expectPrototypeUntouchedAfterAll,
  textDamageArb,
  toJsonText,
  withOwnKey,
  type Verdict,
} from "./hostile.js";

/**
 * Ledgers and audit entries are read back from storage someone may have edited by hand, or that
 * a crash left half-written. Whatever is there, the readers return a value that could be written
 * again or throw `LedgerCorruptError`, quickly.
 */

const REGISTRY =
  "/subscriptions/00000000-0000-0000-0000-0000000000f1/resourceGroups/rg-fuzz/providers/Microsoft.ContainerRegistry/registries/fuzzacr";
const WHERE: DocumentLocation = {
  description: "blob 'acr-allowlist-sync/ledgers/fuzz.json'",
  details: { blob: "ledgers/fuzz.json" },
};

const LEDGER_SEED = {
  schemaVersion: 1,
  registryId: REGISTRY,
  ownedRules: ["20.42.66.0/24", "40.71.10.216/29"],
  pendingRules: ["20.42.67.0/24"],
  appliedTagChangeNumbers: { "AzureContainerRegistry.EastUS": 42 },
  updatedAt: "2025-10-23T03:00:00.000Z",
  lastAuditId: "20251023T030000000Z-a1b2c3",
};

const AUDIT_SEED = {
  schemaVersion: 1,
  id: "20251023T030000000Z-a1b2c3",
  registryId: REGISTRY,
  at: "2025-10-23T03:00:00.000Z",
  operation: "sync",
  rollbackOf: null,
  actor: "timer",
  before: { ipRules: ["203.0.113.7"], ownedRules: [] },
  after: { ipRules: ["203.0.113.7", "20.42.66.0/24"], ownedRules: ["20.42.66.0/24"] },
  source: {
    kind: "details-page",
    location: "https://download.microsoft.com/download/ServiceTags_Public_20251020.json",
    fileName: "ServiceTags_Public_20251020.json",
    changeNumber: 374,
    cloud: "Public",
    retrievedAt: "2025-10-23T03:00:00.000Z",
    bytes: 4250305,
  },
  plan: { adds: ["20.42.66.0/24"], removes: [] },
};

const verdicts: Verdict[] = [];

expectPrototypeUntouchedAfterAll();

function expectWritableLedger(state: LedgerState): void {
  expect(Object.getPrototypeOf(state)).toBe(Object.prototype);
  expect(() => {
    checkWritable("ledger", ledgerStateToJson(state), state.registryId);
  }).not.toThrow();
}

function expectWritableAudit(entry: AuditEntry): void {
  expect(Object.getPrototypeOf(entry)).toBe(Object.prototype);
  expect(() => {
    checkWritable("audit entry", auditEntryToJson(entry), entry.registryId);
  }).not.toThrow();
}

function checkBoth(text: string): void {
  verdicts.push(parsesOrRejects(() => parseLedgerState(text, WHERE), [LedgerCorruptError], expectWritableLedger));
  verdicts.push(parsesOrRejects(() => parseAuditEntry(text, WHERE), [LedgerCorruptError], expectWritableAudit));
}

const ruleLike = fc.oneof(
  fc.ipV4(),
  fc.ipV4().map((ip) => `${ip}/24`),
  fc.ipV4Extended(),
  fc.ipV6(),
  hostileString,
);
const schemaVersionLike = fc.oneof(
  { weight: 3, arbitrary: fc.constant(1) },
  { weight: 1, arbitrary: fc.oneof(hostileNumber, hostileValue, deepNesting) },
);

const ledgerLike = fc.record(
  {
    schemaVersion: schemaVersionLike,
    registryId: fc.oneof(fc.constant(REGISTRY), hostileString, hostileValue),
    ownedRules: fc.oneof(fc.array(ruleLike, { maxLength: 5 }), hostileValue),
    pendingRules: fc.oneof(fc.array(ruleLike, { maxLength: 3 }), hostileValue),
    appliedTagChangeNumbers: fc.oneof(
      fc.dictionary(
        fc.oneof(fc.constant("AzureContainerRegistry.EastUS"), hostileString),
        fc.oneof(fc.nat(), hostileNumber),
      ),
      hostileValue,
    ),
    updatedAt: fc.oneof(
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      fc.constantFrom("2025-10-23", "2025-13-45T99:99:99Z", "2025-10-23T03:00:00+02:00"),
      hostileValue,
    ),
    lastAuditId: fc.oneof(fc.constant(null), fc.constant("20251023T030000000Z-a1b2c3"), hostileString),
  },
  { requiredKeys: [] },
);

const snapshotLike = fc.oneof(
  fc.record(
    { ipRules: fc.array(ruleLike, { maxLength: 4 }), ownedRules: fc.array(ruleLike, { maxLength: 4 }) },
    { requiredKeys: [] },
  ),
  hostileValue,
);

const auditLike = fc.record(
  {
    schemaVersion: schemaVersionLike,
    id: fc.oneof(fc.constant("20251023T030000000Z-a1b2c3"), fc.constant("20251023T030000000Z-A1B2C3"), hostileString),
    registryId: fc.oneof(fc.constant(REGISTRY), hostileValue),
    at: fc.oneof(fc.constant("2025-10-23T03:00:00.000Z"), hostileValue),
    operation: fc.oneof(fc.constantFrom("sync", "rollback", "SYNC"), hostileValue),
    rollbackOf: fc.oneof(fc.constant(null), hostileString),
    actor: fc.oneof(fc.constant("timer"), hostileValue),
    before: snapshotLike,
    after: snapshotLike,
    source: fc.oneof(fc.constant(null), fc.constant(AUDIT_SEED.source), hostileValue),
    plan: fc.oneof(hostileValue, deepNesting),
  },
  { requiredKeys: [] },
);

const documentText = fc.oneof(
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.oneof(fc.jsonValue({ maxDepth: 3 }), hostileValue, deepNesting).map(toJsonText),
  ledgerLike.map(toJsonText),
  auditLike.map(toJsonText),
  fc.array(mutationArb, { minLength: 1, maxLength: 3 }).map((m) => toJsonText(mutate(LEDGER_SEED, m))),
  fc.array(mutationArb, { minLength: 1, maxLength: 3 }).map((m) => toJsonText(mutate(AUDIT_SEED, m))),
  fc
    .tuple(fc.constantFrom(LEDGER_SEED, AUDIT_SEED), fc.array(textDamageArb, { minLength: 1, maxLength: 3 }))
    .map(([seed, changes]) => changes.reduce(damage, JSON.stringify(seed, null, 2))),
);

describe("ledger and audit parsers on hostile input", () => {
  it("return a writable value or throw LedgerCorruptError for any document text", () => {
    fc.assert(
      fc.property(documentText, (text) => {
        checkBoth(text);
      }),
      { numRuns: 300 },
    );
  });

  it("reject a schemaVersion of any odd type or depth with LedgerCorruptError", () => {
    fc.assert(
      fc.property(
        fc.oneof({ weight: 4, arbitrary: hostileValue }, { weight: 1, arbitrary: deepNesting }),
        fc.constantFrom(LEDGER_SEED, AUDIT_SEED),
        (version, seed) => {
          fc.pre(version !== 1);
          const text = toJsonText({ ...seed, schemaVersion: version });
          checkBoth(text);
          expect(() => parseLedgerState(text, WHERE)).toThrow(LedgerCorruptError);
        },
      ),
      { numRuns: 100 },
    );
  });

  it.each([
    ["an object whose toString is not callable", '{"toString":1,"valueOf":1}'],
    ["a 50,000-deep array", `${"[".repeat(50_000)}${"]".repeat(50_000)}`],
    ["a 100,000-character string", JSON.stringify("9".repeat(100_000))],
  ])("names a schemaVersion that is %s without echoing it in bulk", (_, version) => {
    for (const parse of [parseLedgerState, parseAuditEntry]) {
      const text = `{"schemaVersion":${version},"registryId":"x"}`;
      verdicts.push(
        parsesOrRejects(
          () => parse(text, WHERE),
          [LedgerCorruptError],
          () => undefined,
        ),
      );
      expect(() => parse(text, WHERE)).toThrow(/schemaVersion/);
    }
  });

  it.each(PROTOTYPE_KEYS)("ignores a '%s' key in a valid ledger and leaves Object.prototype alone", (key) => {
    const text = toJsonText(withOwnKey({ ...LEDGER_SEED }, key, { polluted: true, ownedRules: ["0.0.0.0/0"] }));
    const state = parseLedgerState(text, WHERE);
    expect(state.ownedRules).toEqual(LEDGER_SEED.ownedRules);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("reads a valid ledger behind a BOM", () => {
    expect(parseLedgerState(`\uFEFF${JSON.stringify(LEDGER_SEED)}`, WHERE).ownedRules).toEqual(LEDGER_SEED.ownedRules);
  });

  it("ends up both accepting and rejecting documents (the generators reach both sides)", () => {
    expect(verdicts).toContain("valid");
    expect(verdicts).toContain("rejected");
  });
});

describe("the file ledger store on a hostile ledger file and audit trail", () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "fuzz-ledger-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const ledgersLike = fc.oneof(
    fc
      .record(
        {
          mine: fc.oneof(
            ledgerLike,
            fc.array(mutationArb, { minLength: 1, maxLength: 2 }).map((m) => mutate(LEDGER_SEED, m)),
            hostileValue,
          ),
          other: fc.oneof(ledgerLike, hostileValue, deepNesting),
          bait: fc.tuple(fc.constantFrom(...PROTOTYPE_KEYS), hostileValue),
        },
        { requiredKeys: [] },
      )
      .map(({ mine, other, bait }) => {
        const ledgers: Record<string, unknown> = {};
        if (mine !== undefined) ledgers[REGISTRY.toLowerCase()] = mine;
        if (other !== undefined) ledgers["/subscriptions/other/registries/otheracr"] = other;
        if (bait !== undefined) withOwnKey(ledgers, bait[0], bait[1]);
        return ledgers;
      }),
    hostileValue,
  );

  const ledgerFile = fc.oneof(
    fc.record({ schemaVersion: schemaVersionLike, ledgers: ledgersLike }, { requiredKeys: [] }).map(toJsonText),
    fc
      .tuple(
        fc.record({ schemaVersion: fc.constant(1), ledgers: ledgersLike }).map(toJsonText),
        fc.array(textDamageArb, { minLength: 1, maxLength: 2 }),
      )
      .map(([text, changes]) => changes.reduce(damage, text)),
    documentText,
    fc.constant(undefined),
  );

  const auditFile = fc.oneof(
    fc
      .array(
        fc.oneof(
          fc.constant(JSON.stringify(AUDIT_SEED)),
          documentText.filter((line) => !line.includes("\n")),
        ),
        { maxLength: 4 },
      )
      .map((lines) => lines.join("\n")),
    fc.string({ unit: "binary", maxLength: 100 }),
    fc.constant(undefined),
  );

  it("reads, lists, writes and appends, or throws LedgerCorruptError; what it writes reads back", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(ledgerFile, auditFile, fc.boolean(), async (ledgerText, auditText, trailingNewline) => {
        run += 1;
        const path = join(dir, `ledger-${run}.json`);
        if (ledgerText !== undefined) await writeFile(path, ledgerText);
        if (auditText !== undefined)
          await writeFile(`${path}.audit.jsonl`, trailingNewline ? `${auditText}\n` : auditText);
        const store = createFileLedgerStore({ path });

        verdicts.push(
          await parsesOrRejectsAsync(
            () => store.read(REGISTRY),
            [LedgerCorruptError],
            (state) => {
              if (state !== undefined) expectWritableLedger(state);
            },
          ),
        );
        verdicts.push(
          await parsesOrRejectsAsync(
            () => store.listAudit(REGISTRY),
            [LedgerCorruptError],
            (entries) => {
              entries.forEach(expectWritableAudit);
            },
          ),
        );

        const next: LedgerState = {
          ...(LEDGER_SEED as LedgerState),
          lastAuditId: undefined,
          updatedAt: new Date(0).toISOString(),
        };
        const wrote = await parsesOrRejectsAsync(
          () => store.write(next),
          [LedgerCorruptError],
          () => undefined,
        );
        if (wrote === "valid") expect(await createFileLedgerStore({ path }).read(REGISTRY)).toEqual(next);

        const entry = {
          ...(AUDIT_SEED as unknown as AuditEntry),
          id: `20251024T030000000Z-${run.toString(16).padStart(6, "0")}`,
          rollbackOf: undefined,
        };
        const appended = await parsesOrRejectsAsync(
          () => store.appendAudit(entry),
          [LedgerCorruptError],
          () => undefined,
        );
        if (appended === "valid")
          expect((await createFileLedgerStore({ path }).listAudit(REGISTRY)).map((e) => e.id)).toContain(entry.id);
      }),
      { numRuns: 80 },
    );
  });
});

describe("the file ledger store on specific hostile files", () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "fuzz-ledger-file-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses to write back a file whose other entry is nested 20,000 deep, naming the entry and leaving the file as it was", async () => {
    const path = join(dir, "deep.json");
    const text = `{"schemaVersion":1,"ledgers":{"/subscriptions/other/registries/deepacr":${"[".repeat(20_000)}${"]".repeat(20_000)}}}`;
    await writeFile(path, text);
    const store = createFileLedgerStore({ path });
    expect(await store.read(REGISTRY)).toBeUndefined();
    const state: LedgerState = { ...(LEDGER_SEED as LedgerState), lastAuditId: undefined };
    await expect(store.write(state)).rejects.toThrow(LedgerCorruptError);
    await expect(store.write(state)).rejects.toThrow(/deepacr.*nested too deeply/);
    expect(await readFile(path, "utf8")).toBe(text);
  });

  it("reads a ledger file that an editor saved with a BOM", async () => {
    const path = join(dir, "bom.json");
    await writeFile(
      path,
      `\uFEFF${JSON.stringify({ schemaVersion: 1, ledgers: { [REGISTRY.toLowerCase()]: LEDGER_SEED } }, null, 2)}`,
    );
    expect((await createFileLedgerStore({ path }).read(REGISTRY))?.ownedRules).toEqual(LEDGER_SEED.ownedRules);
  });

  it("names a hostile schemaVersion of the ledger file without throwing a TypeError", async () => {
    const path = join(dir, "version.json");
    await writeFile(path, '{"schemaVersion":{"toString":1,"valueOf":1},"ledgers":{}}');
    await expect(createFileLedgerStore({ path }).read(REGISTRY)).rejects.toThrow(/schemaVersion \(an object\)/);
  });
});
