import { readFileSync } from "node:fs";
import { request } from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ARM_API_VERSION, startArmEmulator, type ArmEmulator } from "./arm-emulator.js";
import { TASKS_API_VERSION } from "./arm-tasks.js";
import { startIdentityEndpoint, type IdentityEndpoint } from "./identity-endpoint.js";
import { tlsPaths } from "./tls.js";

/** The emulator's ACR Tasks wire format, checked with plain HTTPS requests (no SDK in between). */

let emulator: ArmEmulator;
let identity: IdentityEndpoint;
let token: string;
const ca = readFileSync(tlsPaths.ca);

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly json: unknown;
  readonly text: string;
}

async function send(method: string, url: string, body?: unknown, bearer: string | null = token): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca,
        agent: false,
        headers: {
          ...(bearer === null ? {} : { authorization: `Bearer ${bearer}` }),
          "content-type": "application/json",
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json, text });
        });
      },
    );
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const header = (reply: Reply, name: string): string => String(reply.headers[name] ?? "");
const runRequest = (yaml = "version: v1.1.0\nsteps:\n  - cmd: mcr.microsoft.com/hello-world\n") => ({
  type: "EncodedTaskRunRequest",
  encodedTaskContent: Buffer.from(yaml).toString("base64"),
  platform: { os: "Linux" },
  timeout: 300,
});
const tasksUrl = (id: string, suffix: string) => `${emulator.url}${id}${suffix}?api-version=${TASKS_API_VERSION}`;

async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i += 1) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error("condition not reached");
}

beforeAll(async () => {
  identity = await startIdentityEndpoint({ secret: "s3cret" });
  emulator = await startArmEmulator({ acceptToken: identity.tokenValidator(), tasks: { queuedMs: 5, runningMs: 10 } });
  const issued = await fetch(`${identity.url}?api-version=2019-08-01&resource=https://management.azure.com`, {
    headers: { "X-IDENTITY-HEADER": "s3cret" },
  });
  token = ((await issued.json()) as { access_token: string }).access_token;
  emulator.tasks.setAgentPool("japaneast", ["20.89.0.192/26"]);
});

afterAll(async () => {
  await emulator.close();
  await identity.close();
});

describe("the ARM emulator's ACR Tasks", () => {
  it("answers scheduleRun with 202, an Azure-AsyncOperation to poll and a Location holding the Run", async () => {
    const id = emulator.addRegistry({ name: "tasksone", location: "japaneast", defaultAction: "Deny" });
    const accepted = await send("POST", tasksUrl(id, "/scheduleRun"), runRequest());
    expect(accepted.status).toBe(202);
    const operation = header(accepted, "azure-asyncoperation");
    const location = header(accepted, "location");
    expect(location).toBe(`${emulator.url}${id}/runs/ca1?api-version=${TASKS_API_VERSION}`);
    await until(async () => ((await send("GET", operation)).json as { status: string }).status === "Succeeded");
    const run = await send("GET", location);
    expect(run.status).toBe(200);
    expect(run.json).toMatchObject({
      name: "ca1",
      type: "Microsoft.ContainerRegistry/registries/runs",
      properties: { runId: "ca1", runType: "QuickRun", timeout: 300 },
    });
  });

  it("ends a run Failed when the firewall refuses its agent, and logs the refusal with the agent's IP", async () => {
    const id = emulator.addRegistry({ name: "taskstwo", location: "japaneast", defaultAction: "Deny" });
    await send("POST", tasksUrl(id, "/scheduleRun"), runRequest());
    const statuses = new Set<string>();
    await until(async () => {
      const status = ((await send("GET", tasksUrl(id, "/runs/ca1"))).json as { properties: { status: string } })
        .properties.status;
      statuses.add(status);
      return status === "Failed";
    });
    expect([...statuses].at(-1)).toBe("Failed");
    const link = (await send("POST", tasksUrl(id, "/runs/ca1/listLogSasUrl"))).json as { logLink: string };
    expect(link.logLink).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/logs\/taskstwo\/ca1\/rawtext\.log\?sv=.*&sig=/);
    const log = await send("GET", link.logLink, undefined, null);
    expect(log.status).toBe(200);
    expect(log.text).toContain(
      "denied: client with IP '20.89.0.193' is not allowed access. Refer https://aka.ms/acr/firewall to grant access",
    );
    expect(emulator.tasks.runs(id)).toMatchObject([
      { runId: "ca1", agentIp: "20.89.0.193", admitted: false, status: "Failed" },
    ]);
  });

  it("admits the agent when an IP rule holds its address", async () => {
    const id = emulator.addRegistry({
      name: "tasksthree",
      location: "japaneast",
      defaultAction: "Deny",
      ipRules: ["20.89.0.192/26"],
    });
    await send("POST", tasksUrl(id, "/scheduleRun"), runRequest());
    await until(() => Promise.resolve(emulator.tasks.runs(id)[0]?.status === "Succeeded"));
    expect(emulator.tasks.runs(id)[0]?.admitted).toBe(true);
  });

  it("refuses a log request without its SAS signature", async () => {
    const id = emulator.addRegistry({ name: "tasksfour", location: "japaneast", defaultAction: "Allow" });
    await send("POST", tasksUrl(id, "/scheduleRun"), runRequest());
    const link = (await send("POST", tasksUrl(id, "/runs/ca1/listLogSasUrl"))).json as { logLink: string };
    const reply = await send("GET", link.logLink.replace(/sig=[^&]+/, "sig=forged"), undefined, null);
    expect(reply.status).toBe(403);
    expect(header(reply, "x-ms-error-code")).toBe("AuthenticationFailed");
  });

  it("refuses a run request that is not an EncodedTaskRunRequest with a valid timeout", async () => {
    const id = emulator.addRegistry({ name: "tasksfive", location: "japaneast" });
    const wrongType = await send("POST", tasksUrl(id, "/scheduleRun"), { ...runRequest(), type: "DockerBuildRequest" });
    expect(wrongType.status).toBe(400);
    const shortTimeout = await send("POST", tasksUrl(id, "/scheduleRun"), { ...runRequest(), timeout: 60 });
    expect(shortTimeout.json).toEqual({
      error: {
        code: "InvalidRequestContent",
        message: "'timeout' must be a whole number of seconds from 300 to 28800.",
      },
    });
  });

  it("answers Tasks only on their preview api-version, and runs/read denied as 403", async () => {
    const id = emulator.addRegistry({
      name: "taskssix",
      location: "japaneast",
      deniedActions: ["Microsoft.ContainerRegistry/registries/runs/read"],
    });
    const wrongVersion = await send(
      "POST",
      `${emulator.url}${id}/scheduleRun?api-version=${ARM_API_VERSION}`,
      runRequest(),
    );
    expect(wrongVersion.status).toBe(400);
    expect((wrongVersion.json as { error: { code: string } }).error.code).toBe("InvalidApiVersionParameter");
    const denied = await send("GET", tasksUrl(id, "/runs/ca1"));
    expect(denied.status).toBe(403);
    expect((denied.json as { error: { code: string } }).error.code).toBe("AuthorizationFailed");
  });
});
