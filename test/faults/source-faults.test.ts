import { describe, expect, it } from "vitest";
import { ServiceTagsUnavailableError } from "../../src/servicetags/source-errors.js";
import { LATEST_ALIAS_PATH, type ServiceTagsFault } from "../support/servicetags-server.js";
import { faultSuite, closedLoopbackPort, type FaultRow, type RowContext, type RunObservation } from "./fault-lab.js";

/**
 * The source rows of the fault suite.matrix. The chain is: the Download Center details page, the file
 * it links to, then the `_Latest` alias (the Discovery API is off here and tested in
 * test/servicetags/chain.test.ts), then the last-good copy, which a fresh ledger container does not have yet. A fault on one link falls back to the next (converged);
 * a fault on every link stops the run before ARM is even asked (unchanged and reported, with
 * every source's failure named), and the next clean run converges.
 */

const PAGE = "/en-us/download/details.aspx";
const FILE = "/download/ServiceTags_Public_20251020.json";
const NEWEST = "ServiceTags_Public_20251020.json";

const suite = faultSuite("service-tags source");

/** A bad file must stop everything before the registry is read or the ledger touched. */
async function nothingTouched(o: RunObservation, context: RowContext): Promise<void> {
  expect(o.requests).toEqual([]);
  expect(await context.runtime.ports.ledger.read(context.id)).toBeUndefined();
  const error = o.outcome.ok ? undefined : o.outcome.error;
  expect(error).toBeInstanceOf(ServiceTagsUnavailableError);
}

function originOf(o: RunObservation): string | undefined {
  return o.outcome.ok && o.outcome.result.plan.source.kind === "service-tags"
    ? o.outcome.result.plan.source.origin.kind
    : undefined;
}

/** A row whose fault hits both the linked file and the alias, so no source is left. */
function everywhere(row: string, fault: ServiceTagsFault, code: string, extra: Partial<FaultRow> = {}): FaultRow {
  return {
    row,
    fault: `file and _Latest alias: ${fault.kind}${fault.kind === "status" ? ` ${fault.status}` : ""}`,
    test: `stops before any ARM call when every source answers ${row}, and reports each failure`,
    expected: "unchanged and reported",
    code,
    patches: "none",
    inject: () => {
      suite.harness.tags.setFault(FILE, fault);
      suite.harness.tags.setFault(LATEST_ALIAS_PATH, fault);
    },
    verify: nothingTouched,
    ...extra,
  };
}

const rows: FaultRow[] = [
  {
    row: "403 bot page",
    fault: "details page and _Latest alias: 403 Access Denied page",
    test: "stops before any ARM call when the download site answers its 403 bot page everywhere, and reports it",
    expected: "unchanged and reported",
    code: "ServiceTagsUnavailable(bot-page,no-copy)",
    patches: "none",
    inject: () => {
      suite.harness.tags.setFault(PAGE, { kind: "status", status: 403 });
      suite.harness.tags.setFault(LATEST_ALIAS_PATH, { kind: "status", status: 403 });
    },
    verify: async (o, context) => {
      await nothingTouched(o, context);
      expect(!o.outcome.ok && (o.outcome.error as ServiceTagsUnavailableError).attempts.map((a) => a.source)).toEqual([
        "details-page",
        "latest-alias",
        "last-good",
      ]);
    },
  },
  everywhere("HTML instead of JSON", { kind: "html" }, "ServiceTagsUnavailable(html,no-copy)"),
  everywhere("truncated JSON", { kind: "truncated" }, "ServiceTagsUnavailable(truncated-json,no-copy)"),
  everywhere("wrong schema", { kind: "wrong-schema" }, "ServiceTagsUnavailable(schema,no-copy)"),
  everywhere("wrong cloud", { kind: "wrong-cloud", cloud: "China" }, "ServiceTagsUnavailable(wrong-cloud,no-copy)"),
  {
    ...everywhere(
      "oversized body",
      { kind: "oversized", bytes: 3 * 1024 * 1024 },
      "ServiceTagsUnavailable(too-large,no-copy)",
    ),
    fault: "file: 3 MiB chunked, alias: 3 MiB declared; SERVICE_TAGS_MAX_BYTES=1 MiB",
    settings: { SERVICE_TAGS_MAX_BYTES: String(1024 * 1024) },
    inject: () => {
      suite.harness.tags.setFault(FILE, { kind: "oversized", bytes: 3 * 1024 * 1024 });
      suite.harness.tags.setFault(LATEST_ALIAS_PATH, {
        kind: "oversized",
        bytes: 3 * 1024 * 1024,
        declareLength: true,
      });
    },
  },
  {
    ...everywhere(
      "slow body past the timeout",
      { kind: "slow", intervalMs: 20, chunkBytes: 64 },
      "ServiceTagsUnavailable(timeout,no-copy)",
    ),
    fault: "file and alias: 64 B every 20 ms; SERVICE_TAGS_TIMEOUT_MS=400",
    test: "stops before any ARM call when every source drips its body past the timeout, and reports it",
    settings: { SERVICE_TAGS_TIMEOUT_MS: "400" },
    verify: async (o, context) => {
      await nothingTouched(o, context);
      // Timeouts are transient: each source was tried once more (SERVICE_TAGS_RETRIES=1); then the (absent) copy.
      expect(!o.outcome.ok && (o.outcome.error as ServiceTagsUnavailableError).attempts.map((a) => a.tries)).toEqual([
        2, 2, 1,
      ]);
    },
  },
  {
    row: "unreachable host",
    fault: "details page and alias on a closed loopback port",
    test: "stops before any ARM call when the download host is unreachable, and converges once it is reachable",
    expected: "unchanged and reported",
    code: "ServiceTagsUnavailable(unreachable,no-copy)",
    patches: "none",
    setup: async (l) => {
      const port = await closedLoopbackPort();
      const id = l.addRegistry();
      return l.context(
        id,
        l.blobRuntime(id, {
          SERVICE_TAGS_DETAILS_URL: `https://127.0.0.1:${port}${PAGE}?id=56519`,
          SERVICE_TAGS_LATEST_URL: `https://127.0.0.1:${port}${LATEST_ALIAS_PATH}`,
        }),
      );
    },
    inject: () => undefined,
    heal: (context) => {
      suite.lab.rebuild(context);
    },
    verify: nothingTouched,
  },
  {
    row: "details page without a link",
    fault: "details page lists no file",
    test: "falls back to the _Latest alias when the details page has no link to the file, and converges",
    expected: "converged",
    patches: "applied",
    inject: () => {
      suite.harness.tags.setDetailsPage("none");
    },
    heal: () => {
      suite.harness.tags.setDetailsPage("href");
    },
    verify: (o) => {
      expect(originOf(o)).toBe("latest-alias");
    },
    verifyNext: (o) => {
      expect(originOf(o)).toBe("details-page");
    },
  },
  {
    row: "details page without a link, no alias",
    fault: "details page lists no file; alias answers 404",
    test: "stops before any ARM call when the details page has no link and the alias is gone, and reports both",
    expected: "unchanged and reported",
    code: "ServiceTagsUnavailable(no-link,http-status,no-copy)",
    patches: "none",
    inject: () => {
      suite.harness.tags.setDetailsPage("none");
      suite.harness.tags.setLatest(null);
    },
    heal: () => {
      suite.harness.tags.setDetailsPage("href");
      suite.harness.tags.setLatest(NEWEST);
    },
    verify: nothingTouched,
  },
  {
    row: "file 503 once",
    fault: "linked file answers 503, once",
    test: "converges from the details page when the file fails once with 503: the source retries it",
    expected: "converged",
    patches: "applied",
    inject: () => {
      suite.harness.tags.setFault(FILE, { kind: "status", status: 503 }, { times: 1 });
    },
    verify: (o) => {
      expect(originOf(o)).toBe("details-page");
    },
  },
];

describe("service-tags source faults", () => {
  for (const row of rows) it(row.test, () => suite.lab.runRow(suite.matrix, row));

  it("has a verdict for every row, each as expected", () => {
    expect(suite.matrix.entries.map((e) => e.row)).toEqual(rows.map((r) => r.row));
    expect(suite.matrix.entries.filter((e) => !e.matched)).toEqual([]);
  });
});
