import { Hono } from "hono";
const app = new Hono();
app.get("/__edgelb/healthz", (c) => c.text("ok"));
export default app;
