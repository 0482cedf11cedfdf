import { startAzurite } from "./azurite.js";
import { tlsPaths } from "./tls.js";

/**
 * Runs once in the main vitest process before the workers start, so what it puts in
 * `process.env` is inherited by every worker. Node reads NODE_EXTRA_CA_CERTS only at start-up:
 * this is how the real SDK clients in the workers trust the loopback emulators' certificate.
 * One in-memory Azurite serves the whole suite (tests use unique container names); the returned
 * teardown stops it.
 */
export default async function setup(): Promise<() => Promise<void>> {
  process.env.NODE_EXTRA_CA_CERTS = tlsPaths.ca;
  const azurite = await startAzurite();
  process.env.AZURITE_CONNECTION_STRING = azurite.connectionString;
  process.env.AZURITE_BLOB_ENDPOINT = azurite.blobEndpoint;
  return () => azurite.stop();
}
