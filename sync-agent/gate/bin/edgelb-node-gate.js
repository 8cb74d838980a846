#!/usr/bin/env node
// Launcher for the `edgelb-node-gate` bin: registers tsx so the TypeScript
// sources run as they are, then hands over to gate/main.ts.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../main.ts");
process.exit(await main());
