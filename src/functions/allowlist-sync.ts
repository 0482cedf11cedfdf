import { app } from "@azure/functions";
import { createTimerHandler } from "../app/timer-handler.js";
import { functionsRuntime } from "../app/runtime.js";

const runtime = functionsRuntime();

app.timer("allowlistSync", {
  schedule: runtime.settings.schedule,
  // A missed schedule (app restarted, scaled to zero) runs once at the next start.
  useMonitor: true,
  handler: createTimerHandler(runtime),
});
