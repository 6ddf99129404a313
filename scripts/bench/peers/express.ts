/**
 * Benchmark peer: Express 5, the most used Node framework, on hello world and JSON.
 */
import express from "express";
import { HELLO, JSON_BODY, announce, scenarioArg } from "./serve.ts";

const scenario = scenarioArg(["hello", "json"]);
const app = express();
if (scenario === "hello") app.get("/", (_req, res) => { res.send(HELLO); });
if (scenario === "json") app.get("/json", (_req, res) => { res.json(JSON_BODY); });

const server = app.listen(0, "127.0.0.1", () => announce(server));
