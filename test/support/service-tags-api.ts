import type { IncomingMessage, ServerResponse } from "node:http";

/**
 * The Service Tag Discovery API inside the ARM emulator (azure-facts §10):
 * `GET /subscriptions/{sub}/providers/Microsoft.Network/locations/{location}/serviceTags`, with its
 * wire format (changeNumbers as strings, no `platform`, a `state`, `nextLink` paging) and the
 * documented lag: the test publishes whichever (older) file the API should serve. No
 * test-framework imports: the demo may run it from dist/.
 */

export const SERVICE_TAGS_API_VERSIONS = ["2026-01-01", "2025-05-01"] as const;
export const SERVICE_TAGS_API_PATH =
  /^\/subscriptions\/([^/]+)\/providers\/Microsoft\.Network\/locations\/([^/]+)\/serviceTags\/?$/i;
export const SERVICE_TAGS_ACTION = "Microsoft.Network/locations/serviceTags/read";

export type ServiceTagsApiFault =
  | { readonly kind: "status"; readonly status: number; readonly code?: string; readonly retryAfterSeconds?: number }
  | { readonly kind: "reset" }
  /** 200 with a body that is not the Discovery API's schema. */
  | { readonly kind: "wrong-schema" };

export interface ServiceTagsApiRequest {
  readonly path: string;
  readonly query: string;
  readonly subscriptionId: string;
  readonly location: string;
  status: number | "reset";
}

interface FileTag {
  readonly name: string;
  readonly id: string;
  readonly properties: {
    readonly changeNumber: number;
    readonly region: string;
    readonly systemService: string;
    readonly addressPrefixes: readonly string[];
    readonly networkFeatures?: readonly string[] | null;
  };
}

interface FileLike {
  readonly changeNumber: number;
  readonly cloud: string;
  readonly values: readonly FileTag[];
}

export class ServiceTagsApiEmulator {
  readonly requests: ServiceTagsApiRequest[] = [];
  private document: FileLike | undefined;
  private pageSize = 1000;
  private readonly faults: { fault: ServiceTagsApiFault; left: number }[] = [];
  private deniedSubscriptions = new Set<string>();

  /** What the API serves from now on: a weekly file's JSON (text, Buffer or parsed), or nothing (404). */
  publish(file: string | Buffer | FileLike | undefined): void {
    this.document =
      file === undefined
        ? undefined
        : typeof file === "string" || Buffer.isBuffer(file)
          ? (JSON.parse(file.toString()) as FileLike)
          : file;
  }

  /** Tags per page; more are reached through `nextLink`. */
  setPageSize(size: number): void {
    this.pageSize = size;
  }

  /** Answers 403 AuthorizationFailed for these subscriptions (the identity lacks the action). */
  deny(subscriptionIds: readonly string[]): void {
    this.deniedSubscriptions = new Set(subscriptionIds.map((s) => s.toLowerCase()));
  }

  injectFault(fault: ServiceTagsApiFault, times = 1): void {
    this.faults.push({ fault, left: times });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Answers one request whose path matched `SERVICE_TAGS_API_PATH` (the caller checked the token). */
  handle(req: IncomingMessage, res: ServerResponse, url: URL, tokenOk: boolean, baseUrl: string): void {
    const match = SERVICE_TAGS_API_PATH.exec(url.pathname);
    const subscriptionId = decodeURIComponent(match?.[1] ?? "");
    const location = decodeURIComponent(match?.[2] ?? "");
    const record: ServiceTagsApiRequest = {
      path: url.pathname,
      query: url.search,
      subscriptionId,
      location,
      status: 0,
    };
    this.requests.push(record);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      record.status = status;
      res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
      res.end(typeof body === "string" ? body : JSON.stringify(body));
    };
    if (req.method !== "GET") {
      send(405, armError("MethodNotAllowed", "Only GET is supported."));
      return;
    }
    if (!tokenOk) {
      send(401, armError("InvalidAuthenticationToken", "The access token is invalid."));
      return;
    }
    const apiVersion = url.searchParams.get("api-version") ?? "";
    if (!(SERVICE_TAGS_API_VERSIONS as readonly string[]).includes(apiVersion)) {
      send(
        400,
        armError(
          "InvalidApiVersionParameter",
          `The api-version '${apiVersion}' is invalid. The supported versions are '${SERVICE_TAGS_API_VERSIONS.join("','")}'.`,
        ),
      );
      return;
    }
    const entry = this.faults.find((f) => f.left > 0);
    if (entry !== undefined) {
      entry.left -= 1;
      const fault = entry.fault;
      if (fault.kind === "reset") {
        record.status = "reset";
        req.socket.destroy();
        return;
      }
      if (fault.kind === "wrong-schema") {
        send(200, { value: [{ name: "AzureContainerRegistry" }] });
        return;
      }
      send(
        fault.status,
        armError(fault.code ?? `Http${fault.status}`, `Injected ${fault.status}.`),
        fault.retryAfterSeconds === undefined ? {} : { "retry-after": String(fault.retryAfterSeconds) },
      );
      return;
    }
    if (this.deniedSubscriptions.has(subscriptionId.toLowerCase())) {
      send(
        403,
        armError(
          "AuthorizationFailed",
          `The client does not have authorization to perform action '${SERVICE_TAGS_ACTION}' over scope '/subscriptions/${subscriptionId}' or the scope is invalid.`,
        ),
      );
      return;
    }
    if (this.document === undefined) {
      send(404, armError("NotFound", `No service tags are published for location '${location}'.`));
      return;
    }
    const skip = Number(url.searchParams.get("$skipToken") ?? "0");
    const values = this.document.values.slice(skip, skip + this.pageSize);
    const more = skip + this.pageSize < this.document.values.length;
    const first = `/subscriptions/${subscriptionId}/providers/Microsoft.Network/locations/${location}/serviceTags`;
    send(200, {
      name: this.document.cloud,
      id: `${first}/${this.document.cloud}`,
      type: "Microsoft.Network/serviceTags",
      changeNumber: String(this.document.changeNumber),
      cloud: this.document.cloud,
      values: values.map((tag) => ({
        name: tag.name,
        id: tag.id,
        serviceTagChangeNumber: String(tag.properties.changeNumber),
        properties: {
          changeNumber: String(tag.properties.changeNumber),
          region: tag.properties.region,
          state: "GA",
          systemService: tag.properties.systemService,
          addressPrefixes: tag.properties.addressPrefixes,
          ...(tag.properties.networkFeatures === undefined ? {} : { networkFeatures: tag.properties.networkFeatures }),
        },
      })),
      ...(more ? { nextLink: `${baseUrl}${first}?api-version=${apiVersion}&$skipToken=${skip + this.pageSize}` } : {}),
    });
  }
}

function armError(code: string, message: string): unknown {
  return { error: { code, message } };
}
