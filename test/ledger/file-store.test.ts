import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile, appendFile, mkdir } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LedgerCorruptError, LedgerError, LockHeldError } from "../../src/errors.js";
import { createFileLedgerStore } from "../../src/ledger/file-store.js";
import {
  auditEntry,
  describeLedgerStoreContract,
  ledgerState,
  OTHER_REGISTRY,
  REGISTRY,
} from "./ledger-store-contract.js";

describeLedgerStoreContract("file store", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ledger-contract-"));
  const path = join(dir, "state", "ledger.json");
  return {
    open: () => createFileLedgerStore({ path, pollMs: 50 }),
    async plantLedger(registryId, text) {
      await mkdir(join(dir, "state"), { recursive: true });
      // The file holds all registries; a damaged entry is planted as raw text in its place.
      await writeFile(path, `{"schemaVersion":1,"ledgers":{${JSON.stringify(registryId.toLowerCase())}:${text}}}`);
    },
    async plantAudit(_registryId, _id, text) {
      await mkdir(join(dir, "state"), { recursive: true });
      await appendFile(`${path}.audit.jsonl`, `${text}\n`);
    },
    async cleanup() {
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe("file store specifics", () => {
  let dir: string;
  let path: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "ledger-file-"));
    path = join(dir, "ledger.json");
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function deadPid(): Promise<number> {
    const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
    const pid = child.pid ?? 0;
    await new Promise<void>((resolve) =>
      child.once("exit", () => {
        resolve();
      }),
    );
    return pid;
  }

  function lockFile(fields: Record<string, unknown>): string {
    return JSON.stringify({
      pid: process.pid,
      host: hostname(),
      registryId: OTHER_REGISTRY,
      owner: "cli:bob",
      acquiredAt: "2025-10-23T02:00:00.000Z",
      token: "0011223344556677",
      ...fields,
    });
  }

  it("keeps every registry in one JSON file and leaves no temporary file behind", async () => {
    const store = createFileLedgerStore({ path });
    await store.write(ledgerState());
    await store.write(ledgerState({ registryId: OTHER_REGISTRY }));
    expect(await readdir(dir)).toEqual(["ledger.json"]);
    const document = JSON.parse(await readFile(path, "utf8")) as {
      schemaVersion: number;
      ledgers: Record<string, unknown>;
    };
    expect(document.schemaVersion).toBe(1);
    expect(Object.keys(document.ledgers).sort()).toEqual([REGISTRY.toLowerCase(), OTHER_REGISTRY.toLowerCase()].sort());
  });

  it("does not overwrite a damaged ledger file when writing", async () => {
    await writeFile(path, "{ damaged");
    await expect(createFileLedgerStore({ path }).write(ledgerState())).rejects.toBeInstanceOf(LedgerCorruptError);
    expect(await readFile(path, "utf8")).toBe("{ damaged");
  });

  it("names the file in a corrupt-ledger error", async () => {
    await writeFile(path, JSON.stringify({ schemaVersion: 7, ledgers: {} }));
    const error = await createFileLedgerStore({ path })
      .read(REGISTRY)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LedgerCorruptError);
    expect((error as LedgerCorruptError).message).toContain(path);
    expect((error as LedgerCorruptError).message).toContain("schemaVersion 7");
  });

  it("writes the audit trail as one JSON line per entry beside the ledger", async () => {
    const store = createFileLedgerStore({ path });
    await store.appendAudit(auditEntry(new Date("2025-10-20T03:00:00.000Z")));
    await store.appendAudit(auditEntry(new Date("2025-10-27T03:00:00.000Z")));
    const lines = (await readFile(`${path}.audit.jsonl`, "utf8")).split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe("");
    expect((JSON.parse(lines[0] ?? "") as { id: string }).id).toMatch(/^20251020T030000000Z-[0-9a-f]{6}$/);
  });

  it("refuses to append after an incomplete last line", async () => {
    await writeFile(`${path}.audit.jsonl`, '{"schemaVersion":1');
    await expect(createFileLedgerStore({ path }).appendAudit(auditEntry(new Date()))).rejects.toThrow(
      /incomplete line/,
    );
  });

  it("names the line of a damaged audit entry", async () => {
    const store = createFileLedgerStore({ path });
    await store.appendAudit(auditEntry(new Date("2025-10-20T03:00:00.000Z")));
    await appendFile(`${path}.audit.jsonl`, '{"schemaVersion":1,"id":"x"}\n');
    await expect(store.listAudit(REGISTRY)).rejects.toThrow(/line 2 of file/);
  });

  it("takes over a lock left by a dead process on this host", async () => {
    await writeFile(`${path}.lock`, lockFile({ pid: await deadPid() }));
    const lock = await createFileLedgerStore({ path }).acquireLock(REGISTRY, { waitMs: 0 });
    const content = JSON.parse(await readFile(`${path}.lock`, "utf8")) as { pid: number; registryId: string };
    expect(content).toMatchObject({ pid: process.pid, registryId: REGISTRY });
    await lock.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it("respects a lock of a live process and says who holds it", async () => {
    await writeFile(`${path}.lock`, lockFile({}));
    const error = await createFileLedgerStore({ path, pollMs: 20 })
      .acquireLock(REGISTRY, { waitMs: 100 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockHeldError);
    expect((error as LockHeldError).message).toContain("cli:bob");
    expect((error as LockHeldError).message).toContain(`pid ${process.pid}`);
  });

  it("respects a lock taken on another host, even with a dead pid, and says where", async () => {
    await writeFile(`${path}.lock`, lockFile({ host: "build-vm-7", pid: await deadPid() }));
    const error = await createFileLedgerStore({ path, pollMs: 20 })
      .acquireLock(REGISTRY, { waitMs: 60 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockHeldError);
    expect((error as LockHeldError).remedy).toContain("build-vm-7");
  });

  it("treats an unreadable lock file as held and tells how to clear it", async () => {
    await writeFile(`${path}.lock`, "");
    const error = await createFileLedgerStore({ path, pollMs: 20 })
      .acquireLock(REGISTRY, { waitMs: 60 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockHeldError);
    expect((error as LockHeldError).remedy).toMatch(/delete the lock file/);
  });

  it("does not remove a lock that another run took after ours was cleared", async () => {
    const store = createFileLedgerStore({ path });
    const lock = await store.acquireLock(REGISTRY, { waitMs: 0 });
    await writeFile(`${path}.lock`, lockFile({ token: "ffffffffffffffff" }));
    await lock.release();
    expect(await readFile(`${path}.lock`, "utf8")).toContain("ffffffffffffffff");
  });

  it("reports an unusable path as a LedgerError", async () => {
    await mkdir(path);
    const error = await createFileLedgerStore({ path })
      .read(REGISTRY)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LedgerError);
    expect((error as LedgerError).message).toContain(path);
    expect((error as LedgerError).details.errorCode).toBe("EISDIR");
  });
});
