import { app } from "@azure/functions";
import { createPlanHandler } from "../app/plan-handler.js";
import { functionsRuntime } from "../app/runtime.js";

app.http("allowlistPlan", {
  methods: ["GET"],
  authLevel: "function",
  route: "plan",
  handler: createPlanHandler(functionsRuntime()),
});
