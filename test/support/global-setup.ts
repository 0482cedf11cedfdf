import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { startAzurite } from "./azurite.js";
import { projectRoot } from "./paths.js";
import { tlsPaths } from "./tls.js";

/**
 * Runs once in the main vitest process before the workers start, so what it puts in
 * `process.env` is inherited by every worker. Node reads NODE_EXTRA_CA_CERTS only at start-up:
 * this is how the real SDK clients in the workers trust the loopback emulators' certificate.
 * dist/ is built once here for the tests that spawn the real CLI. One in-memory Azurite serves
 * the whole suite (tests use unique container names); the returned teardown stops it.
 */
export default async function setup(): Promise<() => Promise<void>> {
  process.env.NODE_EXTRA_CA_CERTS = tlsPaths.ca;
  const root = projectRoot();
  execFileSync(
    process.execPath,
    [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.json")],
    { cwd: root, stdio: "inherit" },
  );
  const azurite = await startAzurite({ queue: true });
  process.env.AZURITE_CONNECTION_STRING = azurite.connectionString;
  process.env.AZURITE_BLOB_ENDPOINT = azurite.blobEndpoint;
  process.env.AZURITE_QUEUE_ENDPOINT = azurite.queueEndpoint;
  return () => azurite.stop();
}
