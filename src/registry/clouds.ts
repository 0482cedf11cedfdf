import type { DeploymentCloud } from "../servicetags/schema.js";

/**
 * Azure Resource Manager of each cloud: the default endpoint and the token audience. Kept free
 * of SDK imports so configuration code can use it without loading the ARM client.
 */
export const ARM_ENDPOINTS: Readonly<Record<DeploymentCloud, string>> = {
  Public: "https://management.azure.com",
  AzureGovernment: "https://management.usgovcloudapi.net",
  China: "https://management.chinacloudapi.cn",
};
