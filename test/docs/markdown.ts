// What the docs checks read from a Markdown page: its headings and their
// GitHub anchors, its links, its table of contents, and the shell blocks
// marked for the local lab. Markdown is tokenized by marked, so a link or a
// heading inside a code block or a code span is not taken for one; anchors
// are GitHub's slugs (github-slugger, which GitHub's own renderer matches).
import GithubSlugger from "github-slugger";
import { Lexer, type Token, type Tokens } from "marked";

export interface Heading {
  depth: number;
  /** The text a reader sees (code spans, links and emphasis unwrapped). */
  text: string;
  /** The anchor GitHub gives it: `#` + this. Repeats get -1, -2, … */
  slug: string;
  line: number;
}

export interface Link {
  href: string;
  line: number;
}

export interface LabBlock {
  /** The shell text, the fence's indentation removed. */
  script: string;
  /** 1-based line of the marker. */
  line: number;
}

export const LAB_MARKER = "<!-- lab-commands -->";
export const TOC_START = "<!-- toc -->";
export const TOC_END = "<!-- /toc -->";

function plainText(tokens: Token[] | undefined): string {
  let s = "";
  for (const t of tokens ?? []) {
    if ("tokens" in t && Array.isArray(t.tokens) && t.type !== "codespan") s += plainText(t.tokens);
    else if (t.type === "html") continue; // GitHub drops inline HTML from the anchor
    else if ("text" in t && typeof t.text === "string") s += t.text;
  }
  return s;
}

/** Every token of the page, depth first (list items and blockquotes included). */
function* walk(tokens: Token[]): Generator<Token> {
  for (const t of tokens) {
    yield t;
    if (t.type === "list") for (const item of (t as Tokens.List).items) yield* walk(item.tokens);
    else if ("tokens" in t && Array.isArray(t.tokens)) yield* walk(t.tokens);
    if (t.type === "table") {
      const table = t as Tokens.Table;
      for (const cell of [...table.header, ...table.rows.flat()]) yield* walk(cell.tokens);
    }
  }
}

/** 1-based line of each top-level token's start, from the raw text consumed before it. */
function withLines(markdown: string): Array<{ token: Token; line: number }> {
  const out: Array<{ token: Token; line: number }> = [];
  let line = 1;
  for (const token of new Lexer({ gfm: true }).lex(markdown)) {
    for (const t of walk([token])) out.push({ token: t, line });
    line += (token.raw.match(/\n/g) ?? []).length;
  }
  return out;
}

export function headings(markdown: string): Heading[] {
  const slugger = new GithubSlugger();
  return withLines(markdown)
    .filter(({ token }) => token.type === "heading")
    .map(({ token, line }) => {
      const h = token as Tokens.Heading;
      const text = plainText(h.tokens).trim();
      return { depth: h.depth, text, slug: slugger.slug(text), line };
    });
}

/** Anchors a link may target: heading slugs and explicit `id`/`name` attributes in HTML. */
export function anchors(markdown: string): Set<string> {
  const set = new Set(headings(markdown).map((h) => h.slug));
  for (const { token } of withLines(markdown)) {
    if (token.type !== "html") continue;
    for (const m of (token as Tokens.HTML).raw.matchAll(/\b(?:id|name)\s*=\s*"([^"]+)"/g)) set.add(m[1]!);
  }
  return set;
}

export function links(markdown: string): Link[] {
  const out: Link[] = [];
  for (const { token, line } of withLines(markdown)) {
    if (token.type === "link" || token.type === "image") out.push({ href: (token as Tokens.Link).href, line });
    if (token.type === "html") {
      for (const m of (token as Tokens.HTML).raw.matchAll(/\bhref\s*=\s*"([^"]+)"/g)) out.push({ href: m[1]!, line });
    }
  }
  return out;
}

/** The repository's top-level folders: a code span starting with one of them names a path. */
export const REPO_FOLDERS = ["worker", "sync-agent", "lab", "test", "deploy", "bench", "docs"];

/**
 * Paths the page names in code spans (`lab/cluster/cluster.ts`), so a moved
 * file is noticed like a broken link. A glob part (`*.golden`) is cut off.
 */
export function repoPaths(markdown: string): Link[] {
  const out: Link[] = [];
  const re = new RegExp(`^(?:${REPO_FOLDERS.join("|")})/[^\\s]*$`);
  for (const { token, line } of withLines(markdown)) {
    if (token.type !== "codespan") continue;
    const text = (token as Tokens.Codespan).text;
    if (re.test(text)) out.push({ href: text.replace(/[*<].*$/, ""), line });
  }
  return out;
}

/** A link that leaves the repository (a scheme such as https: or mailto:, or //host). */
export function isExternal(href: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(href) || href.startsWith("//");
}

/**
 * The shell blocks marked for the local lab: a line holding only the marker,
 * then a ```sh fence (same indentation or more) up to its closing fence.
 * A marker without such a block is an error, so a typo cannot silently skip
 * commands.
 */
export function labBlocks(markdown: string): LabBlock[] {
  const lines = markdown.split("\n");
  const out: LabBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== LAB_MARKER) continue;
    const open = /^(\s*)```(?:sh|bash|shell)\s*$/.exec(lines[i + 1] ?? "");
    if (!open) throw new Error(`line ${i + 1}: ${LAB_MARKER} must be followed by a \`\`\`sh fence on the next line`);
    const indent = open[1]!;
    const body: string[] = [];
    let j = i + 2;
    for (; j < lines.length; j++) {
      if (/^\s*```\s*$/.test(lines[j]!)) break;
      const l = lines[j]!;
      body.push(l.startsWith(indent) ? l.slice(indent.length) : l.trimStart());
    }
    if (j >= lines.length) throw new Error(`line ${i + 2}: the marked \`\`\`sh block is never closed`);
    out.push({ script: body.join("\n"), line: i + 1 });
    i = j;
  }
  return out;
}

/** The table of contents a page should have: its ## sections, and their ### ones indented. */
export function tableOfContents(markdown: string): string {
  return headings(markdown)
    .filter((h) => h.depth === 2 || h.depth === 3)
    .map((h) => `${h.depth === 3 ? "  " : ""}- [${h.text.replace(/([[\]])/g, "\\$1")}](#${h.slug})`)
    .join("\n");
}

/** The text between the page's toc markers, or undefined when it has none. */
export function currentToc(markdown: string): string | undefined {
  const start = markdown.indexOf(TOC_START);
  if (start < 0) return undefined;
  const end = markdown.indexOf(TOC_END, start);
  if (end < 0) return "";
  return markdown.slice(start + TOC_START.length, end).trim();
}

/** The page with its toc block (re)written; a bare `<!-- toc -->` gets one. */
export function withToc(markdown: string): string {
  const start = markdown.indexOf(TOC_START);
  if (start < 0) return markdown;
  const end = markdown.indexOf(TOC_END, start);
  const after = end < 0 ? start + TOC_START.length : end + TOC_END.length;
  const toc = `${TOC_START}\n\n${tableOfContents(markdown)}\n\n${TOC_END}`;
  return markdown.slice(0, start) + toc + markdown.slice(after);
}

/**
 * A lab block as the docs test runs it against its own `npm start`: the
 * documented worker port, state directory and node addresses replaced by the
 * test's own.
 */
export function localize(script: string, lab: { port: number; stateDir: string; addressBase: string }): string {
  return script
    .replace(/(?<![\d.])8787(?!\d)/g, String(lab.port))
    .replace(/(?<![\w.-])\.edgelb\//g, `${lab.stateDir.replace(/\/$/, "")}/`)
    .replace(/(?<![\d.])127\.0\.0\.(1[1-9])(?![\d])/g, `${lab.addressBase}.$1`);
}

/**
 * One bash script for a page's lab blocks, each announced by its line; the
 * first failing command names its block on stderr and stops the script. A
 * curl that gets an error status fails too (--fail-with-body), as a reader
 * would notice: a 404 or a 502 is not "it works".
 */
export function pageScript(page: string, markdown: string, lab: { port: number; stateDir: string; addressBase: string }): string {
  const parts = [
    "set -eo pipefail",
    `trap 'echo "FAILED: the block at ${page}:$BLOCK" >&2' ERR`,
    'curl() { command curl --fail-with-body "$@" || return; }', // the caller fails, so the ERR trap names the block
  ];
  for (const b of labBlocks(markdown)) parts.push(`BLOCK=${b.line}`, `echo "--- ${page}:${b.line}"`, localize(b.script, lab));
  return parts.join("\n");
}
