#!/usr/bin/env node
// Launcher for the `edgelb-sync-agent` bin: registers tsx so the TypeScript
// sources run as they are, then hands over to main.ts.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../main.ts");
process.exit(await main());
