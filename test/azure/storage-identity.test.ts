import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRuntime } from "../../src/app/runtime.js";
import { loadSettings } from "../../src/config/settings.js";
import { startIdentityEndpoint, type IdentityEndpoint } from "../support/identity-endpoint.js";
import { serverTlsOptions } from "../support/tls.js";

/**
 * The identity-based host storage conventions of the official Functions samples:
 * `AzureWebJobsStorage__accountName` (the blob endpoint derived per cloud) and `__clientId`
 * (the user-assigned identity the ledger must use, as the host does).
 */

const ID =
  "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg";
const STORAGE_CLIENT = "11111111-2222-4333-8444-555555555555";
const APP_CLIENT = "99999999-8888-4777-8666-555555555555";

let identity: IdentityEndpoint;
/** A blob endpoint that creates any container and has no blob: enough for a ledger read. */
let blob: Server;
const bearers: string[] = [];
beforeAll(async () => {
  identity = await startIdentityEndpoint();
  Object.assign(process.env, identity.env());
  blob = createServer(serverTlsOptions(), (req, res) => {
    bearers.push(req.headers.authorization ?? "");
    const missing = req.method !== "PUT";
    res.writeHead(missing ? 404 : 201, missing ? { "x-ms-error-code": "BlobNotFound" } : {});
    res.end();
  });
  await new Promise<void>((done) => blob.listen(0, "127.0.0.1", done));
});
afterAll(async () => {
  await identity.close();
  await new Promise<void>((done) => {
    blob.close(() => {
      done();
    });
  });
});

describe("identity-based ledger storage", () => {
  it.each([
    ["Public", "https://mystorage.blob.core.windows.net"],
    ["AzureGovernment", "https://mystorage.blob.core.usgovcloudapi.net"],
    ["China", "https://mystorage.blob.core.chinacloudapi.cn"],
  ])("derives the %s blob endpoint from AzureWebJobsStorage__accountName", (cloud, uri) => {
    const settings = loadSettings({
      TARGET_REGISTRIES: ID,
      SERVICE_TAGS_CLOUD: cloud,
      AzureWebJobsStorage__accountName: "mystorage",
    });
    expect(settings.storage.blobServiceUri).toBe(uri);
  });

  it("prefers an explicit __blobServiceUri over the account name", () => {
    const settings = loadSettings({
      TARGET_REGISTRIES: ID,
      AzureWebJobsStorage__accountName: "mystorage",
      AzureWebJobsStorage__blobServiceUri: "https://other.blob.core.windows.net",
    });
    expect(settings.storage.blobServiceUri).toBe("https://other.blob.core.windows.net");
  });

  it("builds the blob ledger from the account name alone", () => {
    expect(() => createRuntime({ TARGET_REGISTRIES: ID, AzureWebJobsStorage__accountName: "mystorage" })).not.toThrow();
  });

  it("refuses an account name that is not one, naming the setting", () => {
    expect(() => loadSettings({ TARGET_REGISTRIES: ID, AzureWebJobsStorage__accountName: "My_Storage" })).toThrow(
      /AzureWebJobsStorage__accountName/,
    );
  });

  it("asks the managed identity endpoint for a storage token as the __clientId identity", async () => {
    const runtime = createRuntime({
      TARGET_REGISTRIES: ID,
      AZURE_CLIENT_ID: APP_CLIENT,
      AzureWebJobsStorage__blobServiceUri: `https://127.0.0.1:${(blob.address() as AddressInfo).port}/devstoreaccount1`,
      AzureWebJobsStorage__clientId: STORAGE_CLIENT,
    });
    expect(await runtime.ports.ledger.read(ID)).toBeUndefined();
    expect(bearers.length).toBeGreaterThan(0);
    expect(bearers.every((b) => b.startsWith("Bearer mi-"))).toBe(true);
    const storageRequests = identity.requests.filter((r) => r.resource?.startsWith("https://storage.azure.com"));
    expect(storageRequests.length).toBeGreaterThan(0);
    expect(storageRequests.every((r) => r.clientId === STORAGE_CLIENT)).toBe(true);
  });
});
