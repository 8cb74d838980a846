// The docs checks' reading of Markdown: headings and GitHub anchors, links
// (not inside code), marked lab blocks, tables of contents, and how a lab
// command is rewritten for the test's own npm start.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { anchors, currentToc, headings, labBlocks, links, localize, pageScript, repoPaths, tableOfContents, withToc } from "./markdown.ts";

describe("headings and anchors", () => {
  it("gives GitHub's slugs: code and links unwrapped, punctuation dropped, repeats numbered", () => {
    const md = [
      "# The simulated cluster (`lab/cluster/`)",
      "## 2. Open the NodePorts to the edge",
      "## High availability: leader election",
      "## [Linked](x.md) *emphasis* — dash",
      "## Logs",
      "## Logs",
      "```sh",
      "# not a heading",
      "```",
    ].join("\n");
    expect(headings(md).map((h) => h.slug)).toEqual([
      "the-simulated-cluster-labcluster",
      "2-open-the-nodeports-to-the-edge",
      "high-availability-leader-election",
      "linked-emphasis--dash",
      "logs",
      "logs-1",
    ]);
    expect(headings(md).map((h) => h.line)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("counts explicit ids as anchors", () => {
    expect(anchors('<a id="flags-table"></a>\n\n# Title').has("flags-table")).toBe(true);
  });
});

describe("links", () => {
  it("finds links in text, lists and tables, with their line, and none in code", () => {
    const md = [
      "See [a](docs/a.md) and ![img](pic.png).",
      "",
      "- item with [b](#b)",
      "",
      "| x | y |",
      "|---|---|",
      "| [c](c.md#c) | `[not](code.md)` |",
      "",
      "```md",
      "[not](fenced.md)",
      "```",
      '<a href="html.md">h</a>',
    ].join("\n");
    expect(links(md)).toEqual([
      { href: "docs/a.md", line: 1 },
      { href: "pic.png", line: 1 },
      { href: "#b", line: 3 },
      { href: "c.md#c", line: 5 },
      { href: "html.md", line: 12 },
    ]);
  });
});

describe("repository paths", () => {
  it("takes code spans that start with a top-level folder, globs cut off, none from code blocks", () => {
    const md = "Run `lab/start.ts` and `npm start`; golden files in `sync-agent/model/testdata/*.golden`.\n\n```sh\ncat `worker/x.ts`\n```\n\nNot `worker` alone, not `test/a b`.";
    expect(repoPaths(md)).toEqual([
      { href: "lab/start.ts", line: 1 },
      { href: "sync-agent/model/testdata/", line: 1 },
    ]);
  });
});

describe("lab blocks", () => {
  it("takes only marked sh blocks, indentation removed, with the marker's line", () => {
    const md = [
      "```sh",
      "not marked",
      "```",
      "<!-- lab-commands -->",
      "```sh",
      "kubectl get nodes",
      "```",
      "1. step",
      "",
      "   <!-- lab-commands -->",
      "   ```sh",
      "   kubectl cordon node-3",
      "     indented more",
      "   ```",
    ].join("\n");
    expect(labBlocks(md)).toEqual([
      { script: "kubectl get nodes", line: 4 },
      { script: "kubectl cordon node-3\n  indented more", line: 10 },
    ]);
  });

  it("refuses a marker without a block, or a block never closed", () => {
    expect(() => labBlocks("<!-- lab-commands -->\n\n```sh\nls\n```")).toThrow(/line 1: .* must be followed by a ```sh fence/);
    expect(() => labBlocks("<!-- lab-commands -->\n```sh\nls\n")).toThrow(/never closed/);
  });

  it("gives back any marked commands exactly, at any indentation (property)", () => {
    const line = fc.stringMatching(/^[a-z0-9 $=./:'"|-]{0,40}$/).filter((l) => !l.includes("```") && l.trim() !== "<!-- lab-commands -->");
    fc.assert(
      fc.property(fc.array(fc.array(line, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 4 }), fc.nat(6), (blocks, indentWidth) => {
        const indent = " ".repeat(indentWidth);
        const md = blocks
          .map((b) => [`${indent}<!-- lab-commands -->`, `${indent}\`\`\`sh`, ...b.map((l) => (l === "" ? "" : indent + l)), `${indent}\`\`\``].join("\n"))
          .join("\n\ntext between\n\n");
        expect(labBlocks(md).map((b) => b.script)).toEqual(blocks.map((b) => b.join("\n")));
      }),
    );
  });
});

describe("table of contents", () => {
  const page = "# Title\n\nIntro.\n\n<!-- toc -->\n\n## One\n\n### One a\n\n## Two [x]\n";

  it("lists ## and ### sections, and is rewritten in place", () => {
    expect(tableOfContents(page)).toBe("- [One](#one)\n  - [One a](#one-a)\n- [Two \\[x\\]](#two-x)");
    const written = withToc(page);
    expect(currentToc(written)).toBe(tableOfContents(page));
    expect(withToc(written)).toBe(written);
    expect(written.startsWith("# Title\n\nIntro.\n\n<!-- toc -->\n\n- [One](#one)")).toBe(true);
  });

  it("notices a section missing from it", () => {
    const stale = withToc(page).replace("## Two [x]", "## Two [x]\n\n## Three");
    expect(currentToc(stale)).not.toBe(tableOfContents(stale));
  });
});

describe("localize", () => {
  const lab = { port: 40123, stateDir: ".scratch-docs-abc/state", addressBase: "127.28.1" };

  it("points the documented port, state directory and node addresses at the test's lab", () => {
    expect(localize("export KUBECONFIG=$PWD/.edgelb/kubeconfig", lab)).toBe("export KUBECONFIG=$PWD/.scratch-docs-abc/state/kubeconfig");
    expect(localize('curl -H "Authorization: Bearer $(cat .edgelb/read-token)" http://127.0.0.1:8787/__edgelb/v1/status', lab)).toBe(
      'curl -H "Authorization: Bearer $(cat .scratch-docs-abc/state/read-token)" http://127.0.0.1:40123/__edgelb/v1/status',
    );
    expect(localize("curl http://web.localhost:8787/ http://127.0.0.12:31000/", lab)).toBe("curl http://web.localhost:40123/ http://127.28.1.12:31000/");
  });

  it("leaves other numbers and names alone", () => {
    expect(localize("kubectl scale deploy/x --replicas=87870 && echo 18787 127.0.0.1 127.0.0.100 my.edgelb/x", lab)).toBe(
      "kubectl scale deploy/x --replicas=87870 && echo 18787 127.0.0.1 127.0.0.100 my.edgelb/x",
    );
  });
});

describe("the page script the docs check runs", () => {
  // A site on this suite's own loopback address: / answers 200, anything else 404.
  async function site(): Promise<{ port: number; close: () => Promise<void> }> {
    const server = http.createServer((req, res) => {
      res.writeHead(req.url === "/" ? 200 : 404, { "content-type": "text/plain" });
      res.end(req.url === "/" ? "hello\n" : "404 page not found\n");
    });
    await new Promise<void>((r) => server.listen(0, "127.24.9.1", r));
    return { port: (server.address() as AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
  }
  const bash = (script: string) =>
    new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile("bash", ["-c", script], { timeout: 20_000 }, (err, _out, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }));
    });
  const page = (path: string) => `# Try it\n\n<!-- lab-commands -->\n\`\`\`sh\necho before\ncurl http://127.24.9.1:8787${path}\n\`\`\`\n`;

  it("fails, naming the block, when a marked curl gets an error status; passes when it gets 200", async () => {
    const s = await site();
    try {
      const lab = { port: s.port, stateDir: ".edgelb", addressBase: "127.24.9" };
      const broken = await bash(pageScript("README.md", page("/missing"), lab));
      expect(broken.code).not.toBe(0);
      expect(broken.stderr).toMatch(/FAILED: the block at README.md:\d+/);
      const fine = await bash(pageScript("README.md", page("/"), lab));
      expect(fine, fine.stderr).toMatchObject({ code: 0 });
    } finally {
      await s.close();
    }
  });

  it("a block can still assert an error status it expects", async () => {
    const s = await site();
    try {
      const md = `<!-- lab-commands -->\n\`\`\`sh\ntest "$(curl -s -o /dev/null -w '%{http_code}' http://127.24.9.1:8787/missing)" = 404\n\`\`\`\n`;
      const r = await bash(pageScript("docs/lab.md", md, { port: s.port, stateDir: ".edgelb", addressBase: "127.24.9" }));
      expect(r, r.stderr).toMatchObject({ code: 0 });
      expect(r.stderr).not.toContain("FAILED");
      const wrong = await bash(pageScript("docs/lab.md", md.replace("= 404", "= 503"), { port: s.port, stateDir: ".edgelb", addressBase: "127.24.9" }));
      expect(wrong.code).not.toBe(0);
      expect(wrong.stderr).toMatch(/FAILED: the block at docs\/lab.md:\d+/);
    } finally {
      await s.close();
    }
  });
});
