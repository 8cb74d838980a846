// The docs a newcomer reads hold together: every relative link in README.md
// and docs/*.md reaches a file that exists, every #anchor a heading of that
// page (GitHub's slug) or an explicit id, and each docs/ page carries a table
// of contents that lists its sections (`npm run docs:toc` writes it).
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../e2e/process.ts";
import { anchors, currentToc, isExternal, links, repoPaths, tableOfContents, TOC_START } from "./markdown.ts";

const PAGES = [
  "README.md",
  ...readdirSync(path.join(ROOT, "docs"))
    .filter((n) => n.endsWith(".md"))
    .sort()
    .map((n) => `docs/${n}`),
];

const anchorCache = new Map<string, Set<string>>();
function anchorsOf(file: string): Set<string> {
  let a = anchorCache.get(file);
  if (!a) anchorCache.set(file, (a = anchors(readFileSync(file, "utf8"))));
  return a;
}

/** Why `href` (found in `page`) does not resolve, or undefined when it does. */
export function brokenLink(page: string, href: string): string | undefined {
  if (isExternal(href)) return undefined;
  const [rawTarget, rawAnchor] = href.split("#", 2) as [string, string | undefined];
  const target = decodeURIComponent(rawTarget);
  const file = target === "" ? path.join(ROOT, page) : path.resolve(path.dirname(path.join(ROOT, page)), target);
  if (!file.startsWith(ROOT + path.sep) && file !== ROOT) return `points outside the repository`;
  if (!existsSync(file)) return `${path.relative(ROOT, file)} does not exist`;
  if (rawAnchor === undefined) return undefined;
  if (statSync(file).isDirectory() || !file.endsWith(".md")) return `#${rawAnchor} on ${path.relative(ROOT, file)}, which is not a Markdown page`;
  const anchor = decodeURIComponent(rawAnchor);
  if (!anchorsOf(file).has(anchor)) return `${path.relative(ROOT, file)} has no heading or id for #${anchor}`;
  return undefined;
}

describe("docs links", () => {
  it("README.md and the docs/ references exist", () => {
    for (const p of ["README.md", "docs/production.md", "docs/worker.md", "docs/agent.md", "docs/lab.md", "docs/benchmarks.md"]) {
      expect(existsSync(path.join(ROOT, p)), p).toBe(true);
    }
  });

  it.each(PAGES)("every relative link and anchor in %s resolves", (page) => {
    const broken = links(readFileSync(path.join(ROOT, page), "utf8"))
      .map((l) => ({ ...l, why: brokenLink(page, l.href) }))
      .filter((l) => l.why)
      .map((l) => `${page}:${l.line}: (${l.href}) ${l.why}`);
    expect(broken, broken.join("\n")).toEqual([]);
  });

  it("README.md links every page under docs/, so none is orphaned", () => {
    const linked = new Set(
      links(readFileSync(path.join(ROOT, "README.md"), "utf8"))
        .filter((l) => !isExternal(l.href))
        .map((l) => path.normalize(decodeURIComponent(l.href.split("#")[0]!))),
    );
    const orphans = PAGES.filter((p) => p.startsWith("docs/") && !linked.has(p));
    expect(orphans, `link these from README.md (a short line in its Documentation list): ${orphans.join(", ")}`).toEqual([]);
  });

  it.each(PAGES)("every repository path %s names in code exists", (page) => {
    const missing = repoPaths(readFileSync(path.join(ROOT, page), "utf8"))
      .filter((p) => !existsSync(path.join(ROOT, p.href)) && !existsSync(path.join(ROOT, `${p.href}.ts`)))
      .map((p) => `${page}:${p.line}: \`${p.href}\` does not exist`);
    expect(missing, missing.join("\n")).toEqual([]);
  });

  it.each(PAGES.filter((p) => p.startsWith("docs/")))("%s has a table of contents listing its sections", (page) => {
    const md = readFileSync(path.join(ROOT, page), "utf8");
    expect(md.includes(TOC_START), `${page}: no ${TOC_START} marker (put one under the page's introduction, then npm run docs:toc)`).toBe(true);
    expect(currentToc(md), `${page}: the table of contents is out of date: npm run docs:toc`).toBe(tableOfContents(md));
  });

  it("finds what is broken: a missing file, a missing anchor, an anchor on a non-page", () => {
    expect(brokenLink("README.md", "docs/no-such-page.md")).toBe("docs/no-such-page.md does not exist");
    expect(brokenLink("README.md", "#no-such-heading")).toBe("README.md has no heading or id for #no-such-heading");
    expect(brokenLink("docs/lab.md", "worker.md#no-such-heading")).toBe("docs/worker.md has no heading or id for #no-such-heading");
    expect(brokenLink("README.md", "package.json#x")).toBe("#x on package.json, which is not a Markdown page");
    expect(brokenLink("README.md", "../../etc/passwd")).toBe("points outside the repository");
    expect(brokenLink("docs/lab.md", "../README.md#quick-start")).toBeUndefined();
    expect(brokenLink("docs/lab.md", "https://example.com/#anything")).toBeUndefined();
  });
});
