import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { IncomingMessage, ServerResponse } from "node:http";
import { fixturePath } from "./paths.js";
import { serverTlsOptions } from "./tls.js";

/**
 * A loopback HTTPS stand-in for Microsoft's Download Center: the weekly service-tags files under
 * `/download/<name>`, the `_Latest` alias, the details pages that link to them, and programmable
 * faults per path. Used by the tests and by the offline demo (from dist/), so no vitest imports.
 */

export type DetailsPageForm =
  /** `AcOEt_DownloadUrl = "...json"` in a script (the newest file). */
  | "js-variable"
  /** `<a href="...ServiceTags_<Cloud>_YYYYMMDD.json?...&amp;...">` for every published file of the cloud. */
  | "href"
  /** A page without any link to a file. */
  | "none";

export type ServiceTagsFault =
  /** Any status; a 403 without `body` answers the bot-protection HTML page. */
  | { readonly kind: "status"; readonly status: number; readonly body?: string; readonly retryAfterSeconds?: number }
  /** 200 with an HTML page instead of JSON. */
  | { readonly kind: "html" }
  /** 200 with the first half (or `keepBytes`) of the file. */
  | { readonly kind: "truncated"; readonly keepBytes?: number }
  /** 200 with valid JSON that is not a service-tags file. */
  | { readonly kind: "wrong-schema" }
  /** 200 with the file, its `cloud` replaced. */
  | { readonly kind: "wrong-cloud"; readonly cloud?: string }
  /** 200 with `bytes` bytes; chunked unless `declareLength`. */
  | { readonly kind: "oversized"; readonly bytes: number; readonly declareLength?: boolean }
  /** 200 with the file dripped `chunkBytes` every `intervalMs`. */
  | { readonly kind: "slow"; readonly intervalMs: number; readonly chunkBytes?: number }
  /** The connection is destroyed (after `afterBytes` of the body when set). */
  | { readonly kind: "reset"; readonly afterBytes?: number }
  /** 302 to `location`. */
  | { readonly kind: "redirect"; readonly location: string };

export interface RequestLogEntry {
  readonly method: string;
  /** Path and query, e.g. `/en-us/download/details.aspx?id=56519`. */
  readonly path: string;
  readonly userAgent: string | undefined;
  readonly at: Date;
  /** The request carried If-None-Match or If-Modified-Since. */
  readonly conditional: boolean;
  /** The status answered, once the answer is sent (undefined for a reset connection). */
  status: number | undefined;
}

export interface ServiceTagsServerOptions {
  /** Served at `/download/<name>`. Default: Public 20251013 and 20251020 (ACR subsets) and China 20260720. */
  readonly files?: Readonly<Record<string, string | Buffer>>;
  /** The file served at the Public `_Latest` alias; default the newest Public file, null = 404. */
  readonly latest?: string | null;
  readonly detailsPage?: DetailsPageForm;
  /** Answer 403 with the bot page when the User-Agent does not look like a browser (as the real site does). Default true. */
  readonly botProtection?: boolean;
  /** Send ETag and Last-Modified with files and answer conditional requests with 304 (as the CDN does). Default true. */
  readonly validators?: boolean;
}

export interface ServiceTagsServer {
  /** `https://127.0.0.1:<port>` */
  readonly origin: string;
  readonly port: number;
  /** The details page of a cloud (default Public). */
  detailsPageUrl(cloud?: string): string;
  readonly latestAliasUrl: string;
  fileUrl(fileName: string): string;
  /** Publishes or replaces a file. */
  publish(fileName: string, content: string | Buffer): void;
  setLatest(fileName: string | null): void;
  /** Turns ETag / Last-Modified and 304 answers on or off. */
  setValidators(on: boolean): void;
  setDetailsPage(form: DetailsPageForm | { readonly html: string }): void;
  /** A fault for one path (without query); `times` limits it to the next N requests. */
  setFault(path: string, fault: ServiceTagsFault, options?: { readonly times?: number }): void;
  clearFaults(): void;
  readonly requests: readonly RequestLogEntry[];
  requestsTo(path: string): RequestLogEntry[];
  close(): Promise<void>;
}

export const DETAILS_PAGE_IDS: Readonly<Record<string, string>> = {
  Public: "56519",
  AzureGovernment: "57063",
  China: "57062",
};
export const LATEST_ALIAS_PATH = "/download/ServiceTags_Public_Latest.json";

/** A file of `test/fixtures/servicetags/`. */
export function readServiceTagsFixture(name: string): Buffer {
  return readFileSync(fixturePath("servicetags", name));
}

export function defaultServiceTagsFiles(): Record<string, Buffer> {
  return {
    "ServiceTags_Public_20251013.json": readServiceTagsFixture("ServiceTags_Public_20251013.acr.json"),
    "ServiceTags_Public_20251020.json": readServiceTagsFixture("ServiceTags_Public_20251020.acr.json"),
    "ServiceTags_China_20260720.json": readServiceTagsFixture("ServiceTags_China_20260720.json"),
  };
}

export const BOT_PAGE_HTML =
  '<HTML><HEAD>\n<TITLE>Access Denied</TITLE>\n</HEAD><BODY>\n<H1>Access Denied</H1>\n \nYou don\'t have permission to access "http&#58;&#47;&#47;www&#46;microsoft&#46;com&#47;en&#45;us&#47;download&#47;details&#46;aspx&#63;" on this server.<P>\nReference&#32;&#35;18&#46;5f3e1002&#46;1760000000&#46;1a2b3c4d\n</BODY>\n</HTML>\n';

const HTML_INSTEAD_OF_JSON =
  '<!DOCTYPE html>\n<html lang="en-us"><head><meta charset="utf-8"><title>Download Azure IP Ranges and Service Tags – Public Cloud from Official Microsoft Download Center</title></head>\n<body><div id="main">Thank you for downloading</div></body></html>\n';

interface FaultEntry {
  readonly fault: ServiceTagsFault;
  remaining: number | undefined;
}

export async function startServiceTagsServer(options: ServiceTagsServerOptions = {}): Promise<ServiceTagsServer> {
  const files = new Map<string, Buffer>();
  for (const [name, content] of Object.entries(options.files ?? defaultServiceTagsFiles())) {
    files.set(name, Buffer.isBuffer(content) ? content : Buffer.from(content, "utf8"));
  }
  let latest: string | null =
    options.latest === undefined
      ? ([...files.keys()]
          .filter((n) => n.startsWith("ServiceTags_Public_"))
          .sort()
          .at(-1) ?? null)
      : options.latest;
  let detailsPage: DetailsPageForm | { readonly html: string } = options.detailsPage ?? "href";
  const botProtection = options.botProtection ?? true;
  let validators = options.validators ?? true;
  // Last-Modified per file: when it was published here, to the second (HTTP dates have no more).
  const modified = new Map<string, Date>();
  const stamp = (name: string): void => {
    modified.set(name, new Date(Math.floor(Date.now() / 1000) * 1000));
  };
  for (const name of files.keys()) stamp(name);
  const faults = new Map<string, FaultEntry>();
  const requests: RequestLogEntry[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let origin = "";

  const detailsHtml = (cloud: string): string => {
    if (typeof detailsPage === "object") return detailsPage.html;
    const names = [...files.keys()].filter((n) => new RegExp(`^ServiceTags_${cloud}_\\d{8}\\.json$`).test(n)).sort();
    return renderDetailsPage(
      cloud,
      detailsPage,
      names.map((n) => `${origin}/download/${n}`),
    );
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? "/", origin);
    const userAgent = req.headers["user-agent"];
    const conditional = req.headers["if-none-match"] !== undefined || req.headers["if-modified-since"] !== undefined;
    const logged: RequestLogEntry = {
      method: req.method ?? "GET",
      path: url.pathname + url.search,
      userAgent,
      at: new Date(),
      conditional,
      status: undefined,
    };
    requests.push(logged);
    res.on("finish", () => {
      logged.status = res.statusCode;
    });
    const entry = faults.get(url.pathname);
    if (entry?.remaining !== undefined) {
      entry.remaining -= 1;
      if (entry.remaining <= 0) faults.delete(url.pathname);
    }
    const body = resolveBody(url);
    if (entry !== undefined) {
      applyFault(entry.fault, body?.content ?? Buffer.from("{}"), req, res, timers);
      return;
    }
    if (botProtection && !(userAgent ?? "").includes("Mozilla/")) {
      send(res, 403, "text/html", Buffer.from(BOT_PAGE_HTML));
      return;
    }
    if (body === undefined) {
      send(res, 404, "text/html", Buffer.from("<html><body><h1>404 - File or directory not found.</h1></body></html>"));
      return;
    }
    if (validators && body.name !== undefined) {
      const etag = `"${createHash("sha256").update(body.content).digest("hex").slice(0, 16)}"`;
      const lastModified = modified.get(body.name) ?? new Date(0);
      const headers = { etag, "last-modified": lastModified.toUTCString() };
      const ifNoneMatch = req.headers["if-none-match"];
      const ifModifiedSince = Date.parse(req.headers["if-modified-since"] ?? "");
      const notModified =
        ifNoneMatch !== undefined
          ? ifNoneMatch.split(",").some((tag) => tag.trim() === etag)
          : Number.isFinite(ifModifiedSince) && lastModified.getTime() <= ifModifiedSince;
      if (notModified) {
        res.writeHead(304, headers);
        res.end();
        return;
      }
      send(res, 200, body.contentType, body.content, headers);
      return;
    }
    send(res, 200, body.contentType, body.content);
  };

  const resolveBody = (url: URL): { content: Buffer; contentType: string; name?: string } | undefined => {
    if (url.pathname === "/en-us/download/details.aspx") {
      const cloud = Object.entries(DETAILS_PAGE_IDS).find(([, id]) => id === url.searchParams.get("id"))?.[0];
      return cloud === undefined
        ? undefined
        : { content: Buffer.from(detailsHtml(cloud)), contentType: "text/html; charset=utf-8" };
    }
    if (url.pathname === LATEST_ALIAS_PATH) {
      const content = latest === null ? undefined : files.get(latest);
      return content === undefined || latest === null
        ? undefined
        : { content, contentType: "application/octet-stream", name: latest };
    }
    const match = /^\/download\/([^/]+)$/.exec(url.pathname);
    const name = match?.[1] === undefined ? undefined : decodeURIComponent(match[1]);
    const content = name === undefined ? undefined : files.get(name);
    return content === undefined ? undefined : { content, contentType: "application/octet-stream", name };
  };

  const server: Server = createServer(serverTlsOptions(), handle);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  origin = `https://127.0.0.1:${port}`;

  return {
    origin,
    port,
    detailsPageUrl: (cloud = "Public") => `${origin}/en-us/download/details.aspx?id=${DETAILS_PAGE_IDS[cloud] ?? "0"}`,
    latestAliasUrl: `${origin}${LATEST_ALIAS_PATH}`,
    fileUrl: (fileName) => `${origin}/download/${fileName}`,
    publish(fileName, content) {
      files.set(fileName, Buffer.isBuffer(content) ? content : Buffer.from(content, "utf8"));
      stamp(fileName);
    },
    setValidators(on) {
      validators = on;
    },
    setLatest(fileName) {
      latest = fileName;
    },
    setDetailsPage(form) {
      detailsPage = form;
    },
    setFault(path, fault, faultOptions = {}) {
      faults.set(path, { fault, remaining: faultOptions.times });
    },
    clearFaults() {
      faults.clear();
    },
    requests,
    requestsTo: (path) => requests.filter((r) => r.path === path || r.path.startsWith(`${path}?`)),
    async close() {
      for (const timer of timers) clearInterval(timer);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
}

/** A page shaped like the Download Center's (trimmed), linking to `fileUrls` in the given form. */
export function renderDetailsPage(cloud: string, form: DetailsPageForm, fileUrls: readonly string[]): string {
  const newest = fileUrls.at(-1);
  const head = `<!DOCTYPE html>\n<html lang="en-us" dir="ltr"><head><meta charset="utf-8"><title>Download Azure IP Ranges and Service Tags – ${cloud} Cloud from Official Microsoft Download Center</title>\n`;
  const intro =
    '<body><div id="mainContent"><h1>Azure IP Ranges and Service Tags – ' +
    cloud +
    " Cloud</h1>\n<p>This file contains the IP address ranges for " +
    cloud +
    " Azure as well as service tags.</p>\n";
  const tail = "</div></body></html>\n";
  switch (form) {
    case "js-variable":
      return `${head}<script type="text/javascript">\n  var AcOEt_ProductName = "Azure IP Ranges and Service Tags";\n  window.AcOEt_DownloadUrl = "${newest ?? ""}";\n</script></head>\n${intro}<a class="mscom-link download-button" href="confirmation.aspx?id=56519">Download</a>\n${tail}`;
    case "href": {
      const links = fileUrls
        .map(
          (u) =>
            `<tr><td><a href="${u}?lang=en-us&amp;src=details" class="mscom-link" data-bi-name="download">${u.slice(u.lastIndexOf("/") + 1)}</a></td></tr>`,
        )
        .join("\n");
      return `${head}</head>\n${intro}<table class="file-list">\n${links}\n</table>\n${tail}`;
    }
    case "none":
      return `${head}</head>\n${intro}<p>We're sorry, this download is no longer available.</p>\n${tail}`;
  }
}

function send(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: Buffer,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "content-type": contentType, "content-length": String(body.byteLength), ...headers });
  res.end(body);
}

function applyFault(
  fault: ServiceTagsFault,
  file: Buffer,
  req: IncomingMessage,
  res: ServerResponse,
  timers: Set<NodeJS.Timeout>,
): void {
  switch (fault.kind) {
    case "status": {
      const body =
        fault.body ??
        (fault.status === 403 ? BOT_PAGE_HTML : `<html><body><h1>HTTP ${fault.status}</h1></body></html>`);
      const headers: Record<string, string> =
        fault.retryAfterSeconds === undefined ? {} : { "retry-after": String(fault.retryAfterSeconds) };
      send(res, fault.status, "text/html", Buffer.from(body), headers);
      return;
    }
    case "html":
      send(res, 200, "text/html; charset=utf-8", Buffer.from(HTML_INSTEAD_OF_JSON));
      return;
    case "truncated":
      send(res, 200, "application/octet-stream", file.subarray(0, fault.keepBytes ?? Math.floor(file.byteLength / 2)));
      return;
    case "wrong-schema":
      send(
        res,
        200,
        "application/json",
        Buffer.from(JSON.stringify({ changeNumber: 1, cloud: "Public", items: [{ name: "AzureContainerRegistry" }] })),
      );
      return;
    case "wrong-cloud": {
      const parsed = JSON.parse(file.toString("utf8")) as Record<string, unknown>;
      send(res, 200, "application/json", Buffer.from(JSON.stringify({ ...parsed, cloud: fault.cloud ?? "China" })));
      return;
    }
    case "oversized": {
      res.writeHead(200, {
        "content-type": "application/octet-stream",
        ...(fault.declareLength === true ? { "content-length": String(fault.bytes) } : {}),
      });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let sent = 0;
      const pump = (): void => {
        while (sent < fault.bytes && !res.destroyed) {
          const piece = chunk.subarray(0, Math.min(chunk.byteLength, fault.bytes - sent));
          sent += piece.byteLength;
          if (!res.write(piece)) {
            res.once("drain", pump);
            return;
          }
        }
        if (!res.destroyed) res.end();
      };
      pump();
      return;
    }
    case "slow": {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(file.byteLength) });
      const size = fault.chunkBytes ?? 16;
      let offset = 0;
      const timer = setInterval(() => {
        if (res.destroyed || offset >= file.byteLength) {
          clearInterval(timer);
          timers.delete(timer);
          if (!res.destroyed) res.end();
          return;
        }
        res.write(file.subarray(offset, offset + size));
        offset += size;
      }, fault.intervalMs);
      timers.add(timer);
      res.on("close", () => {
        clearInterval(timer);
        timers.delete(timer);
      });
      return;
    }
    case "reset":
      if (fault.afterBytes === undefined) {
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(file.byteLength) });
      res.write(file.subarray(0, fault.afterBytes), () => req.socket.destroy());
      return;
    case "redirect":
      res.writeHead(302, { location: fault.location, "content-length": "0" });
      res.end();
      return;
  }
}
