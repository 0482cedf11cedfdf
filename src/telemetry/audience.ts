import type { DeploymentCloud } from "../servicetags/schema.js";
import { parseConnectionString } from "./connection-string.js";

/**
 * Azure Monitor's Entra ID audience per cloud. The exporter asks for a token for the connection
 * string's `AADAudience`, else for the public audience whatever the cloud: outside the public
 * cloud that token is refused and every event is lost, so the cloud's audience is added here.
 * https://learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication
 */
export const MONITOR_AUDIENCES: Readonly<Record<DeploymentCloud, string>> = {
  Public: "https://monitor.azure.com",
  AzureGovernment: "https://monitor.azure.us",
  China: "https://monitor.azure.cn",
};

/** The connection string with an `AADAudience` (the one it has, or the cloud's as a `.default` scope). */
export function withMonitorAudience(connectionString: string, cloud: DeploymentCloud): string {
  if (parseConnectionString(connectionString).aadAudience !== undefined) return connectionString;
  const separator = connectionString.trimEnd().endsWith(";") ? "" : ";";
  return `${connectionString.trimEnd()}${separator}AADAudience=${MONITOR_AUDIENCES[cloud]}/.default`;
}
