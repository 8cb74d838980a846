// `npm run docs:toc`: rewrites the table of contents of every docs/*.md page
// that has a `<!-- toc -->` marker, from its ## and ### headings.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { withToc } from "./markdown.ts";

const docs = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../docs");
for (const name of readdirSync(docs).filter((n) => n.endsWith(".md")).sort()) {
  const file = path.join(docs, name);
  const before = readFileSync(file, "utf8");
  const after = withToc(before);
  if (after !== before) {
    writeFileSync(file, after);
    console.log(`docs/${name}: table of contents rewritten`);
  }
}
