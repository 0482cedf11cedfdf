import type { DeploymentCloud } from "../servicetags/schema.js";

/**
 * Blob endpoint suffix of each cloud, for `AzureWebJobsStorage__accountName` (the Functions host
 * derives `https://<account>.blob.<suffix>` the same way).
 * https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity
 */
const STORAGE_SUFFIXES: Readonly<Record<DeploymentCloud, string>> = {
  Public: "core.windows.net",
  AzureGovernment: "core.usgovcloudapi.net",
  China: "core.chinacloudapi.cn",
};

export function blobServiceUriForAccount(accountName: string, cloud: DeploymentCloud): string {
  return `https://${accountName}.blob.${STORAGE_SUFFIXES[cloud]}`;
}
