import { createServer as createNetServer } from "node:net";
import { statSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ConfigError, ServiceTagsSourceError } from "../../src/errors.js";
import { createServiceTagsSource, type ServiceTagsSourceOptions } from "../../src/servicetags/source.js";
import { ServiceTagsUnavailableError, type SourceAttemptFailure } from "../../src/servicetags/source-errors.js";
import { fixturePath } from "../support/paths.js";
import {
  readServiceTagsFixture,
  startServiceTagsServer,
  type ServiceTagsServer,
} from "../support/servicetags-server.js";

const NEWEST = "/download/ServiceTags_Public_20251020.json";
const OLDER = "/download/ServiceTags_Public_20251013.json";
const CHINA = "/download/ServiceTags_China_20260720.json";
const PAGE_PATH = "/en-us/download/details.aspx";
const ALIAS_PATH = "/download/ServiceTags_Public_Latest.json";
const NOW = new Date("2025-10-23T03:00:00.000Z");

let server: ServiceTagsServer;
let closedPort: number;
let sleeps: number[];

beforeAll(async () => {
  server = await startServiceTagsServer();
  closedPort = await freePortThenClose();
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  server.clearFaults();
  server.setDetailsPage("href");
  server.setLatest("ServiceTags_Public_20251020.json");
  sleeps = [];
});

function source(overrides: Partial<ServiceTagsSourceOptions> = {}) {
  return createServiceTagsSource({
    cloud: "Public",
    detailsPageUrl: server.detailsPageUrl(),
    latestAliasUrl: server.latestAliasUrl,
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
    now: () => NOW,
    ...overrides,
  });
}

/** Requests made while `action` ran, as paths without query. */
async function requestsDuring<T>(
  action: () => Promise<T>,
): Promise<{ result: T | undefined; error: unknown; paths: string[] }> {
  const start = server.requests.length;
  let result: T | undefined;
  let error: unknown;
  try {
    result = await action();
  } catch (caught) {
    error = caught;
  }
  return { result, error, paths: server.requests.slice(start).map((r) => r.path.replace(/\?.*$/, "")) };
}

function attemptsOf(error: unknown): readonly SourceAttemptFailure[] {
  expect(error).toBeInstanceOf(ServiceTagsUnavailableError);
  return (error as ServiceTagsUnavailableError).attempts;
}

async function freePortThenClose(): Promise<number> {
  const probe = createNetServer();
  await new Promise<void>((resolve) =>
    probe.listen(0, "127.0.0.1", () => {
      resolve();
    }),
  );
  const address = probe.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  await new Promise<void>((resolve) =>
    probe.close(() => {
      resolve();
    }),
  );
  return port;
}

describe("the details page source", () => {
  it("follows the newest href on the details page and records where the file came from", async () => {
    const { result, paths } = await requestsDuring(() => source().fetch());
    expect(paths).toEqual([PAGE_PATH, NEWEST]);
    expect(result?.file.changeNumber).toBe(374);
    expect(result?.origin).toEqual({
      kind: "details-page",
      location: `${server.origin}${NEWEST}?lang=en-us&src=details`,
      fileName: "ServiceTags_Public_20251020.json",
      changeNumber: 374,
      cloud: "Public",
      retrievedAt: NOW.toISOString(),
      bytes: readServiceTagsFixture("ServiceTags_Public_20251020.acr.json").byteLength,
      publishedAt: "2025-10-20T00:00:00.000Z",
      ageBasis: "file-date",
    });
  });

  it("follows the AcOEt_DownloadUrl script variable", async () => {
    server.setDetailsPage("js-variable");
    const { result, paths } = await requestsDuring(() => source().fetch());
    expect(paths).toEqual([PAGE_PATH, NEWEST]);
    expect(result?.origin.location).toBe(`${server.origin}${NEWEST}`);
  });

  it("sends a browser-like User-Agent by default", async () => {
    const start = server.requests.length;
    await source().fetch();
    const agents = server.requests.slice(start).map((r) => r.userAgent);
    expect(agents).toHaveLength(2);
    for (const agent of agents) expect(agent).toMatch(/^Mozilla\/5\.0 /);
  });

  it("uses the China details page for the China cloud and does not try a Public alias", async () => {
    const { result, paths } = await requestsDuring(() =>
      source({ cloud: "China", detailsPageUrl: server.detailsPageUrl("China"), latestAliasUrl: undefined }).fetch(),
    );
    expect(paths).toEqual([PAGE_PATH, CHINA]);
    expect(result?.origin.cloud).toBe("China");
    expect(result?.origin.fileName).toBe("ServiceTags_China_20260720.json");
  });

  it("falls back to the _Latest alias when the page has no link", async () => {
    server.setDetailsPage("none");
    const { result, paths } = await requestsDuring(() => source().fetch());
    expect(paths).toEqual([PAGE_PATH, ALIAS_PATH]);
    expect(result?.origin.kind).toBe("latest-alias");
    expect(result?.origin.fileName).toBe("ServiceTags_Public_Latest.json");
  });

  it("refuses a link to a host other than download.microsoft.com or the page's own host", async () => {
    server.setDetailsPage({ html: `<a href="https://localhost:${server.port}${NEWEST}">file</a>` });
    const { error, paths } = await requestsDuring(() => source({ latestAliasUrl: null }).fetch());
    expect(paths).toEqual([PAGE_PATH]);
    expect(attemptsOf(error)).toMatchObject([
      { source: "details-page", reason: "not-https", location: `https://localhost:${server.port}${NEWEST}` },
    ]);
  });
});

describe("the explicit source", () => {
  it("uses an explicit https URL first and asks no other source", async () => {
    const { result, paths } = await requestsDuring(() =>
      source({ serviceTagsUrl: server.fileUrl("ServiceTags_Public_20251013.json") }).fetch(),
    );
    expect(paths).toEqual([OLDER]);
    expect(result?.origin).toMatchObject({
      kind: "explicit",
      fileName: "ServiceTags_Public_20251013.json",
      changeNumber: 373,
    });
  });

  it("reads a local file path", async () => {
    const path = fixturePath("servicetags", "ServiceTags_Public_20251013.acr.json");
    const { result, paths } = await requestsDuring(() => source({ serviceTagsUrl: path }).fetch());
    expect(paths).toEqual([]);
    expect(result?.origin).toMatchObject({
      kind: "file",
      location: path,
      fileName: "ServiceTags_Public_20251013.acr.json",
      bytes: statSync(path).size,
    });
  });

  it("reads a file: URL", async () => {
    const path = fixturePath("servicetags", "ServiceTags_Public_20251020.acr.json");
    const result = await source({ serviceTagsUrl: pathToFileURL(path).toString() }).fetch();
    expect(result.origin).toMatchObject({ kind: "file", location: path, changeNumber: 374 });
  });

  it("reports a missing local file and asks no other source", async () => {
    const path = fixturePath("servicetags", "no-such-file.json");
    const { result, error, paths } = await requestsDuring(() => source({ serviceTagsUrl: path }).fetch());
    expect(result).toBeUndefined();
    expect(paths).toEqual([]);
    expect(attemptsOf(error)).toMatchObject([{ source: "file", location: path, reason: "file-unreadable" }]);
    expect((error as ServiceTagsUnavailableError).remedy).toMatch(/only source/);
  });

  it("fails with the reason when an explicit https URL fails, without falling back", async () => {
    server.setFault(NEWEST, { kind: "status", status: 404 });
    const { result, error, paths } = await requestsDuring(() =>
      source({ serviceTagsUrl: server.fileUrl("ServiceTags_Public_20251020.json") }).fetch(),
    );
    expect(result).toBeUndefined();
    expect(paths).toEqual([NEWEST]);
    expect(attemptsOf(error)).toMatchObject([{ source: "explicit", reason: "http-status", status: 404 }]);
  });

  it("refuses a local file larger than maxBytes", async () => {
    const path = fixturePath("servicetags", "ServiceTags_Public_20251020.acr.json");
    const { error } = await requestsDuring(() =>
      source({ serviceTagsUrl: path, maxBytes: 1000, detailsPageUrl: null, latestAliasUrl: null }).fetch(),
    );
    expect(attemptsOf(error)).toMatchObject([{ source: "file", reason: "too-large" }]);
  });

  it("refuses a plain http URL at creation, naming the setting, without requesting it", () => {
    const start = server.requests.length;
    const url = `http://127.0.0.1:${server.port}${NEWEST}`;
    expect(() => source({ serviceTagsUrl: url })).toThrow(ConfigError);
    expect(() => source({ serviceTagsUrl: url })).toThrow(/SERVICE_TAGS_URL \(--service-tags\)/);
    expect(server.requests.length).toBe(start);
  });

  it("refuses a redirect to plain http", async () => {
    server.setFault(NEWEST, { kind: "redirect", location: `http://127.0.0.1:${server.port}${OLDER}` });
    const { error, paths } = await requestsDuring(() =>
      source({
        serviceTagsUrl: server.fileUrl("ServiceTags_Public_20251020.json"),
        detailsPageUrl: null,
        latestAliasUrl: null,
      }).fetch(),
    );
    expect(paths).toEqual([NEWEST]);
    expect(attemptsOf(error)).toMatchObject([{ reason: "not-https" }]);
  });

  it("follows an https redirect and records the final URL", async () => {
    server.setFault(ALIAS_PATH, { kind: "redirect", location: server.fileUrl("ServiceTags_Public_20251013.json") });
    const result = await source({ serviceTagsUrl: server.latestAliasUrl }).fetch();
    expect(result.origin).toMatchObject({
      kind: "explicit",
      location: server.fileUrl("ServiceTags_Public_20251013.json"),
      changeNumber: 373,
    });
  });
});

describe("failures of one source", () => {
  const only = (): Partial<ServiceTagsSourceOptions> => ({
    serviceTagsUrl: server.fileUrl("ServiceTags_Public_20251020.json"),
    detailsPageUrl: null,
    latestAliasUrl: null,
  });

  it.each([
    ["an HTML page instead of JSON", { kind: "html" } as const, "html"],
    ["truncated JSON", { kind: "truncated" } as const, "truncated-json"],
    ["JSON with the wrong schema", { kind: "wrong-schema" } as const, "schema"],
    ["the file of another cloud", { kind: "wrong-cloud", cloud: "AzureGovernment" } as const, "wrong-cloud"],
    ["a 404", { kind: "status", status: 404 } as const, "http-status"],
    ["a 403 bot page", { kind: "status", status: 403 } as const, "bot-page"],
  ])("reports %s as %s without retrying", async (_label, fault, reason) => {
    server.setFault(NEWEST, fault);
    const { error, paths } = await requestsDuring(() => source(only()).fetch());
    expect(paths).toEqual([NEWEST]);
    expect(attemptsOf(error)).toMatchObject([{ source: "explicit", reason, tries: 1 }]);
    expect(sleeps).toEqual([]);
  });

  it("answers the bot page to a client without a browser-like User-Agent", async () => {
    const { error } = await requestsDuring(() => source({ userAgent: "curl/8.5.0", latestAliasUrl: null }).fetch());
    expect(attemptsOf(error)).toMatchObject([{ source: "details-page", reason: "bot-page", status: 403, tries: 1 }]);
    expect(server.requests.at(-1)?.userAgent).toBe("curl/8.5.0");
  });

  it("retries a 500 twice with exponential backoff, then gives up", async () => {
    server.setFault(NEWEST, { kind: "status", status: 500 });
    const { error, paths } = await requestsDuring(() => source(only()).fetch());
    expect(paths).toEqual([NEWEST, NEWEST, NEWEST]);
    expect(sleeps).toEqual([1000, 2000]);
    expect(attemptsOf(error)).toMatchObject([{ reason: "http-status", status: 500, tries: 3 }]);
  });

  it("succeeds when a 503 clears on the retry", async () => {
    server.setFault(NEWEST, { kind: "status", status: 503 }, { times: 1 });
    const { result, paths } = await requestsDuring(() => source(only()).fetch());
    expect(paths).toEqual([NEWEST, NEWEST]);
    expect(result?.file.changeNumber).toBe(374);
    expect(sleeps).toEqual([1000]);
  });

  it("waits as long as a 429's Retry-After says", async () => {
    server.setFault(NEWEST, { kind: "status", status: 429, retryAfterSeconds: 7 }, { times: 1 });
    const result = await source(only()).fetch();
    expect(result.origin.changeNumber).toBe(374);
    expect(sleeps).toEqual([7000]);
  });

  it("stops a chunked body that grows past maxBytes", async () => {
    server.setFault(NEWEST, { kind: "oversized", bytes: 5 * 1024 * 1024 });
    const { error } = await requestsDuring(() => source({ ...only(), maxBytes: 256 * 1024 }).fetch());
    expect(attemptsOf(error)).toMatchObject([{ reason: "too-large", tries: 1 }]);
  });

  it("refuses a declared Content-Length past maxBytes", async () => {
    server.setFault(NEWEST, { kind: "oversized", bytes: 5 * 1024 * 1024, declareLength: true });
    const { error } = await requestsDuring(() => source({ ...only(), maxBytes: 256 * 1024 }).fetch());
    expect(attemptsOf(error)).toMatchObject([{ reason: "too-large" }]);
  });

  it("times out a body that drips slower than the timeout, and retries it", async () => {
    server.setFault(NEWEST, { kind: "slow", intervalMs: 20, chunkBytes: 64 });
    const { error, paths } = await requestsDuring(() => source({ ...only(), timeoutMs: 300, retries: 1 }).fetch());
    expect(paths).toEqual([NEWEST, NEWEST]);
    expect(attemptsOf(error)).toMatchObject([{ reason: "timeout", tries: 2 }]);
  });

  it("reports a connection reset as a network failure and retries it", async () => {
    server.setFault(NEWEST, { kind: "reset" }, { times: 2 });
    const { result, paths } = await requestsDuring(() => source(only()).fetch());
    expect(paths).toEqual([NEWEST, NEWEST, NEWEST]);
    expect(result?.file.changeNumber).toBe(374);
    expect(sleeps).toEqual([1000, 2000]);
  });

  it("reports a connection reset in the middle of the body as a network failure", async () => {
    server.setFault(NEWEST, { kind: "reset", afterBytes: 1000 });
    const { error } = await requestsDuring(() => source({ ...only(), retries: 0 }).fetch());
    expect(attemptsOf(error)).toMatchObject([{ reason: "network", tries: 1 }]);
  });

  it("reports a closed port as an unreachable host", async () => {
    const url = `https://127.0.0.1:${closedPort}/download/ServiceTags_Public_20251020.json`;
    const { error } = await requestsDuring(() =>
      source({ serviceTagsUrl: url, detailsPageUrl: null, latestAliasUrl: null, retries: 1 }).fetch(),
    );
    expect(attemptsOf(error)).toMatchObject([{ source: "explicit", location: url, reason: "unreachable", tries: 2 }]);
  });

  it("rejects a valid file with fewer AzureContainerRegistry tags than minAcrTags", async () => {
    const { error } = await requestsDuring(() => source({ ...only(), minAcrTags: 100 }).fetch());
    expect(attemptsOf(error)).toMatchObject([{ reason: "too-few-acr-tags" }]);
  });

  it("rejects the China file when the Public cloud is configured", async () => {
    const { error } = await requestsDuring(() =>
      source({
        serviceTagsUrl: server.fileUrl("ServiceTags_China_20260720.json"),
        detailsPageUrl: null,
        latestAliasUrl: null,
      }).fetch(),
    );
    expect(attemptsOf(error)).toMatchObject([{ reason: "wrong-cloud" }]);
  });
});

describe("when every source fails", () => {
  it("throws a ServiceTagsSourceError that lists each source and its reason", async () => {
    server.setFault(NEWEST, { kind: "truncated" });
    server.setFault(ALIAS_PATH, { kind: "status", status: 404 });
    const { error, paths } = await requestsDuring(() => source({ retries: 0 }).fetch());
    expect(paths).toEqual([PAGE_PATH, NEWEST, ALIAS_PATH]);
    expect(error).toBeInstanceOf(ServiceTagsSourceError);
    const failure = error as ServiceTagsUnavailableError;
    expect(failure.code).toBe("ServiceTagsUnavailable");
    expect(failure.attempts.map((a) => [a.source, a.reason])).toEqual([
      ["details-page", "truncated-json"],
      ["latest-alias", "http-status"],
    ]);
    expect(failure.details.reasons).toEqual(["truncated-json", "http-status"]);
    expect(failure.message).toContain(`details-page ${server.origin}${NEWEST}`);
    expect(failure.message).toContain("latest-alias");
    expect(failure.remedy).toMatch(/SERVICE_TAGS_URL/);
  });

  it("says so when no source is configured for the cloud", async () => {
    const error = await source({ cloud: "AzureGermany", detailsPageUrl: undefined, latestAliasUrl: undefined })
      .fetch()
      .catch((e: unknown) => e);
    expect(attemptsOf(error)).toEqual([]);
    expect((error as Error).message).toContain("No service-tags source is configured for cloud 'AzureGermany'");
  });
});

describe("options and cancellation", () => {
  it("rejects invalid options with a ConfigError", () => {
    expect(() => source({ timeoutMs: -1 })).toThrow(ConfigError);
    expect(() => source({ retries: 1.5 })).toThrow(/retries/);
  });

  it("stops when the caller aborts", async () => {
    server.setFault(NEWEST, { kind: "slow", intervalMs: 50 });
    const controller = new AbortController();
    const pending = source({ latestAliasUrl: null }).fetch({ signal: controller.signal });
    setTimeout(() => {
      controller.abort(new Error("cancelled by the test"));
    }, 100);
    await expect(pending).rejects.toThrow("cancelled by the test");
  });
});

describe("cancellation during backoff", () => {
  it("rejects with the caller's reason when aborted while waiting to retry", async () => {
    server.setFault(NEWEST, { kind: "status", status: 503 });
    const controller = new AbortController();
    const pending = createServiceTagsSource({
      cloud: "Public",
      serviceTagsUrl: server.fileUrl("ServiceTags_Public_20251020.json"),
      detailsPageUrl: null,
      latestAliasUrl: null,
      retryDelayMs: 60_000,
    }).fetch({ signal: controller.signal });
    setTimeout(() => {
      controller.abort(new Error("shutting down"));
    }, 100);
    await expect(pending).rejects.toThrow("shutting down");
  });
});

describe("conditional requests", () => {
  it("asks again with If-None-Match and reuses the validated file on 304", async () => {
    const shared = source();
    const first = await shared.fetch();
    const start = server.requests.length;
    const second = await shared.fetch();
    const asked = server.requests.slice(start).filter((r) => r.path.startsWith(NEWEST));
    expect(asked.map((r) => [r.conditional, r.status])).toEqual([[true, 304]]);
    expect(second.file).toBe(first.file);
    expect(second.origin.fileName).toBe(first.origin.fileName);
  });

  it("downloads again when the file changed behind the same URL", async () => {
    const shared = source({
      detailsPageUrl: null,
      latestAliasUrl: null,
      serviceTagsUrl: server.fileUrl("Conditional.json"),
    });
    server.publish("Conditional.json", readServiceTagsFixture("ServiceTags_Public_20251013.acr.json"));
    expect((await shared.fetch()).file.changeNumber).toBe(373);
    server.publish("Conditional.json", readServiceTagsFixture("ServiceTags_Public_20251020.acr.json"));
    const start = server.requests.length;
    expect((await shared.fetch()).file.changeNumber).toBe(374);
    expect(server.requests.slice(start).map((r) => [r.conditional, r.status])).toEqual([[true, 200]]);
  });

  it("sends no validators when the server offered none", async () => {
    server.setValidators(false);
    try {
      const shared = source();
      await shared.fetch();
      const start = server.requests.length;
      await shared.fetch();
      expect(server.requests.slice(start).map((r) => [r.conditional, r.status])).toEqual([
        [false, 200],
        [false, 200],
      ]);
    } finally {
      server.setValidators(true);
    }
  });
});
