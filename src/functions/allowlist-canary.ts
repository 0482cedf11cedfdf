import { app } from "@azure/functions";
import { createCanaryTimerHandler } from "../app/canary-handler.js";
import { functionsRuntime } from "../app/runtime.js";

const runtime = functionsRuntime();

app.timer("allowlistCanary", {
  schedule: runtime.settings.canary.schedule,
  useMonitor: true,
  handler: createCanaryTimerHandler(runtime),
});
