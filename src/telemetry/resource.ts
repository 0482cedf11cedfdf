import { defaultResource, resourceFromAttributes, type Resource } from "@opentelemetry/resources";

/**
 * The OpenTelemetry resource of our rows. The Azure Monitor exporter turns `service.name` into
 * `cloud_RoleName` (and `service.instance.id`, absent here, into `cloud_RoleInstance`, so the host
 * name is used). Built from settings and the platform's own variables only: the OpenTelemetry
 * Azure resource detectors are deliberately not run, because the VM detector among them calls the
 * instance metadata service at 169.254.169.254 on every start.
 */

/** Role name outside Azure Functions/App Service (CLI, tests) when none is configured. */
export const DEFAULT_CLOUD_ROLE_NAME = "acr-allowlist-sync";

/**
 * Set by the Functions and App Service platform to the app's name; the same variable the
 * distro's Functions detector reads. It names the environment (`func-acrsync-prod`), which a
 * fixed role name could not.
 */
const PLATFORM_SITE_NAME = "WEBSITE_SITE_NAME";

export interface CloudRoleOptions {
  readonly cloudRoleName?: string | undefined;
}

/** Configured name, else the Functions app's name, else `acr-allowlist-sync`. */
export function cloudRoleName(
  options: CloudRoleOptions,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  const configured = options.cloudRoleName?.trim();
  if (configured !== undefined && configured !== "") return configured;
  const site = env[PLATFORM_SITE_NAME]?.trim();
  if (site !== undefined && site !== "") return site;
  return DEFAULT_CLOUD_ROLE_NAME;
}

export function telemetryResource(
  options: CloudRoleOptions,
  env?: Readonly<Record<string, string | undefined>>,
): Resource {
  // defaultResource() carries telemetry.sdk.*; service.name from it is `unknown_service:node`, replaced here.
  return defaultResource().merge(resourceFromAttributes({ "service.name": cloudRoleName(options, env) }));
}
