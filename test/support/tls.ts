import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Paths and contents of the committed test-only TLS material (see test/fixtures/tls/README.md). */
export const tlsPaths = {
  ca: fileURLToPath(new URL("../fixtures/tls/ca.pem", import.meta.url)),
  cert: fileURLToPath(new URL("../fixtures/tls/server.pem", import.meta.url)),
  key: fileURLToPath(new URL("../fixtures/tls/server.key", import.meta.url)),
};

export function serverTlsOptions(): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(tlsPaths.cert), key: readFileSync(tlsPaths.key) };
}
