import { tlsPaths } from "./tls.js";

/**
 * Runs once in the main vitest process before the workers start, so what it puts in
 * `process.env` is inherited by every worker. Node reads NODE_EXTRA_CA_CERTS only at start-up:
 * this is how the real SDK clients in the workers trust the loopback emulators' certificate.
 */
export default function setup(): void {
  process.env.NODE_EXTRA_CA_CERTS = tlsPaths.ca;
}
