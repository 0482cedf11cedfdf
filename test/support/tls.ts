import { readFileSync } from "node:fs";
import { fixturePath } from "./paths.js";

/** Paths and contents of the committed test-only TLS material (see test/fixtures/tls/README.md). */
export const tlsPaths = {
  ca: fixturePath("tls", "ca.pem"),
  cert: fixturePath("tls", "server.pem"),
  key: fixturePath("tls", "server.key"),
};

export function serverTlsOptions(): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(tlsPaths.cert), key: readFileSync(tlsPaths.key) };
}
