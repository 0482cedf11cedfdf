import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * The App Service / Functions managed identity endpoint (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`,
 * api-version 2019-08-01) on plain http loopback, as the platform serves it. The real
 * `ManagedIdentityCredential` talks to it; the ARM emulator accepts the tokens it issues.
 *
 * MSAL picks the managed identity source from the environment on the first token request and
 * keeps it, and its token cache, for the life of the process: start one endpoint per test file,
 * set `env()` before the first credential asks for a token, and keep it until the file ends.
 */

export const IDENTITY_API_VERSION = "2019-08-01";
export const ARM_AUDIENCE = "https://management.azure.com";

export interface IdentityEndpointOptions {
  /** The `X-IDENTITY-HEADER` value the platform gives the app (default: random). */
  readonly secret?: string;
  /** Lifetime of issued tokens (default 3600 s). */
  readonly tokenLifetimeSeconds?: number;
}

export interface TokenRequestRecord {
  readonly resource: string | undefined;
  /** `client_id` of a user-assigned identity, when the client named one. */
  readonly clientId?: string | undefined;
  readonly status: number;
}

interface IssuedToken {
  readonly audience: string;
  readonly expiresOnMs: number;
}

export class IdentityEndpoint {
  readonly secret: string;
  readonly requests: TokenRequestRecord[] = [];
  private readonly issued = new Map<string, IssuedToken>();
  private readonly sockets = new Set<Socket>();
  private readonly lifetimeSeconds: number;
  private readonly server = createServer((req, res) => {
    this.handle(req, res);
  });
  private baseUrl = "";

  constructor(options: IdentityEndpointOptions = {}) {
    this.secret = options.secret ?? randomBytes(16).toString("hex");
    this.lifetimeSeconds = options.tokenLifetimeSeconds ?? 3600;
    this.server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  /** `http://127.0.0.1:<port>/msi/token`: the value of `IDENTITY_ENDPOINT`. */
  get url(): string {
    return this.baseUrl;
  }

  /** Successful token requests. */
  get tokenRequests(): number {
    return this.requests.filter((r) => r.status === 200).length;
  }

  /** The variables that point `ManagedIdentityCredential` (and `DefaultAzureCredential`) here. */
  env(): { IDENTITY_ENDPOINT: string; IDENTITY_HEADER: string } {
    return { IDENTITY_ENDPOINT: this.baseUrl, IDENTITY_HEADER: this.secret };
  }

  /** True for an unexpired token this endpoint issued for `audience` (trailing slash ignored). */
  isIssued(token: string, audience: string = ARM_AUDIENCE): boolean {
    const entry = this.issued.get(token);
    return entry?.audience === normalizeAudience(audience) && entry.expiresOnMs > Date.now();
  }

  /** A predicate for the ARM emulator's `acceptToken`. */
  tokenValidator(audience: string = ARM_AUDIENCE): (token: string) => boolean {
    return (token) => this.isIssued(token, audience);
  }

  /** Invalidates every token issued so far (clients holding one get 401 from the emulator). */
  revokeAll(): void {
    this.issued.clear();
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, "127.0.0.1", () => {
        resolve();
      });
    });
    this.baseUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/msi/token`;
    return this;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) =>
      this.server.close(() => {
        resolve();
      }),
    );
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://localhost");
    const resource = url.searchParams.get("resource") ?? undefined;
    const clientId = url.searchParams.get("client_id") ?? undefined;
    const answer = (status: number, body: unknown): void => {
      this.requests.push({ resource, clientId, status });
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.method !== "GET" || url.pathname !== "/msi/token") {
      answer(404, { error: "not_found", error_description: "Unknown path." });
      return;
    }
    if (req.headers["x-identity-header"] !== this.secret) {
      answer(401, {
        error: "unauthorized",
        error_description: "The X-IDENTITY-HEADER header is missing or wrong.",
      });
      return;
    }
    if (url.searchParams.get("api-version") !== IDENTITY_API_VERSION) {
      answer(400, {
        error: "invalid_request",
        error_description: `api-version must be ${IDENTITY_API_VERSION}.`,
      });
      return;
    }
    if (resource === undefined || resource === "") {
      answer(400, { error: "invalid_request", error_description: "resource is required." });
      return;
    }
    const token = `mi-${randomBytes(24).toString("base64url")}`;
    const expiresOnSeconds = Math.floor(Date.now() / 1000) + this.lifetimeSeconds;
    this.issued.set(token, { audience: normalizeAudience(resource), expiresOnMs: expiresOnSeconds * 1000 });
    answer(200, {
      access_token: token,
      expires_on: String(expiresOnSeconds),
      resource,
      token_type: "Bearer",
      client_id: "00000000-0000-4000-8000-00000000a11d",
    });
  }
}

export async function startIdentityEndpoint(options: IdentityEndpointOptions = {}): Promise<IdentityEndpoint> {
  return new IdentityEndpoint(options).listen();
}

function normalizeAudience(audience: string): string {
  return audience.replace(/\/+$/, "");
}
