import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { serverTlsOptions } from "./tls.js";

/**
 * A loopback "what is my IP" endpoint over HTTPS (the test CA's certificate), answering like
 * api.ipify.org: the caller's public address as plain text, or `{"ip": ...}` for `?format=json`.
 * The address it reports is whatever the test sets (a loopback caller has no public one).
 */
export interface MyIpServer {
  /** `https://127.0.0.1:<port>/` */
  readonly url: string;
  /** What to answer: the body text and status (default `203.0.113.50`, 200). */
  answer(body: string, status?: number): void;
  readonly requests: number;
  close(): Promise<void>;
}

export async function startMyIpServer(): Promise<MyIpServer> {
  let body = "203.0.113.50";
  let status = 200;
  let requests = 0;
  const server = createServer(serverTlsOptions(), (req, res) => {
    requests += 1;
    const json = new URL(req.url ?? "/", "https://localhost").searchParams.get("format") === "json";
    res.writeHead(status, { "content-type": json ? "application/json" : "text/plain" });
    res.end(json && status === 200 ? JSON.stringify({ ip: body }) : body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      resolve();
    });
  });
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return {
    url,
    answer(text, code = 200) {
      body = text;
      status = code;
    },
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
