// The status page's three static files. The HTML carries no data: the script
// fetches /__edgelb/v1/status with the bearer token (from the login form or the
// link's #token= fragment, which browsers never send to a server) and renders
// it with DOM calls only (textContent), polling every few seconds.

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>edgelb status</title>
<link rel="stylesheet" href="/__edgelb/status.css">
<script src="/__edgelb/status.js" defer></script>
</head>
<body>
<header>
  <h1>edgelb <span class="sub">edge status</span></h1>
  <div id="live" class="live" data-state="idle"><span class="dot"></span><span id="live-text">loading…</span></div>
  <button id="logout" type="button" hidden>Forget token</button>
</header>
<main>
  <form id="login" hidden>
    <h2>Sign in</h2>
    <p>This page shows the worker's live routing state. Paste the worker's read token
       (<code>EDGELB_READ_TOKEN</code>, or <code>EDGELB_PUSH_TOKEN</code> in a single-token setup);
       it stays in this browser tab only.</p>
    <p id="login-error" class="error" hidden></p>
    <label>Token <input id="token" type="password" autocomplete="off" required></label>
    <button type="submit">Show status</button>
  </form>
  <section id="summary"></section>
  <section id="hostnames"></section>
  <section id="clusters"></section>
</main>
<footer id="footer"></footer>
<noscript>This page needs JavaScript to fetch the status.</noscript>
</body>
</html>
`;

export const PAGE_CSS = `
:root { --bg:#f6f7f9; --card:#fff; --ink:#1d2430; --muted:#5d6777; --line:#e2e6ec; --ok:#1a7f37; --okbg:#e6f4ea;
  --warn:#9a6700; --warnbg:#fff4d6; --bad:#c62828; --badbg:#fde7e7; --accent:#f38020; }
@media (prefers-color-scheme: dark) {
  :root { --bg:#111418; --card:#1a1f26; --ink:#e6e9ee; --muted:#9aa4b2; --line:#2a313b; --ok:#4cc870; --okbg:#15301f;
    --warn:#e3b341; --warnbg:#332a12; --bad:#ff6b6b; --badbg:#3a1a1a; }
}
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background:var(--bg); color:var(--ink); }
header { display:flex; align-items:center; gap:16px; padding:12px 24px; background:var(--card); border-bottom:3px solid var(--accent); position:sticky; top:0; z-index:1; }
h1 { font-size:18px; margin:0; flex:1; }
h1 .sub { color:var(--muted); font-weight:400; }
h2 { font-size:16px; margin:0 0 8px; }
main { padding:16px 24px; max-width:1280px; margin:0 auto; }
footer { color:var(--muted); padding:8px 24px 24px; max-width:1280px; margin:0 auto; font-size:12px; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:12.5px; }
button { font:inherit; padding:6px 12px; border:1px solid var(--line); border-radius:6px; background:var(--card); color:var(--ink); cursor:pointer; }
button[type=submit] { background:var(--accent); border-color:var(--accent); color:#fff; }
.live { display:flex; align-items:center; gap:8px; color:var(--muted); }
.live .dot { width:10px; height:10px; border-radius:50%; background:var(--muted); }
.live[data-state=live] .dot { background:var(--ok); box-shadow:0 0 0 3px var(--okbg); }
.live[data-state=stale] .dot, .live[data-state=error] .dot { background:var(--bad); box-shadow:0 0 0 3px var(--badbg); }
.live[data-state=stale], .live[data-state=error] { color:var(--bad); }
form#login { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:20px; max-width:520px; margin:40px auto; }
form#login label { display:flex; gap:8px; align-items:center; margin:12px 0; }
form#login input { flex:1; font:inherit; padding:6px 8px; border:1px solid var(--line); border-radius:6px; background:var(--bg); color:var(--ink); }
.error { color:var(--bad); }
#summary { display:flex; flex-wrap:wrap; gap:12px; margin-bottom:16px; }
.stat { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:10px 16px; min-width:150px; }
.stat .n { font-size:22px; font-weight:600; }
.stat .l { color:var(--muted); font-size:12px; }
.stat.bad { border-color:var(--bad); } .stat.bad .n { color:var(--bad); }
.stat.warn { border-color:var(--warn); } .stat.warn .n { color:var(--warn); }
.cluster { background:var(--card); border:1px solid var(--line); border-radius:10px; margin-bottom:16px; overflow:hidden; }
.cluster > .head { display:flex; flex-wrap:wrap; gap:6px 20px; align-items:baseline; padding:12px 16px; border-bottom:1px solid var(--line); }
.cluster > .head h2 { margin:0; }
.kv { color:var(--muted); } .kv b { color:var(--ink); font-weight:600; }
.banner { padding:8px 16px; border-bottom:1px solid var(--line); }
.banner.bad { background:var(--badbg); color:var(--bad); } .banner.warn { background:var(--warnbg); color:var(--warn); }
.service { padding:12px 16px; border-bottom:1px solid var(--line); }
.service:last-child { border-bottom:0; }
.service .title { display:flex; flex-wrap:wrap; align-items:center; gap:8px 12px; margin-bottom:8px; }
.service .name { font-weight:600; font-size:15px; }
.service a { color:inherit; }
.tag { display:inline-block; padding:1px 8px; border-radius:999px; font-size:12px; border:1px solid var(--line); color:var(--muted); }
.pill { display:inline-block; padding:1px 10px; border-radius:999px; font-size:12px; font-weight:600; }
.pill.ok { background:var(--okbg); color:var(--ok); } .pill.warn { background:var(--warnbg); color:var(--warn); } .pill.bad { background:var(--badbg); color:var(--bad); }
table { border-collapse:collapse; width:100%; table-layout:fixed; }
col.c-node { width:11%; } col.c-origin { width:15%; } col.c-health { width:12%; } col.c-edge { width:21%; }
col.c-num { width:7%; } col.c-err { width:auto; }
th { text-align:left; font-weight:600; color:var(--muted); font-size:12px; padding:4px 8px; border-bottom:1px solid var(--line); }
td { padding:5px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
tr:last-child td { border-bottom:0; }
tr[data-state=unhealthy] td, tr[data-state=ejected] td { background:var(--badbg); }
tr[data-state=unhealthy] .pill.bad, tr[data-state=ejected] .pill.bad { background:var(--card); box-shadow:inset 0 0 0 1px var(--bad); }
td { overflow:hidden; text-overflow:ellipsis; }
th, td { white-space:nowrap; }
td.num, th.num { text-align:right; font-variant-numeric: tabular-nums; }
td.err { color:var(--bad); white-space:normal; overflow-wrap:anywhere; }
.empty { color:var(--muted); padding:12px 16px; }
.hostnames td.reason { white-space:normal; color:var(--muted); }
td.wrap { white-space:normal; overflow-wrap:anywhere; }
`;

// Plain ES2020 in a string (the worker serves it as is). No template
// literals inside, so this file's own template literal stays simple.
export const PAGE_JS = `
"use strict";
(function () {
  var KEY = "edgelb.token";
  var POLL_MS = 2000;
  var STATUS_URL = "/__edgelb/v1/status";
  var token = null;
  var timer = null;
  var lastOk = 0;
  var $ = function (id) { return document.getElementById(id); };

  // The link printed by the demo carries the token in the fragment: keep it
  // for this tab, then drop it from the address bar and history.
  var m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    try { sessionStorage.setItem(KEY, decodeURIComponent(m[1])); } catch (e) {}
    history.replaceState(null, "", location.pathname + location.search);
  }
  try { token = sessionStorage.getItem(KEY); } catch (e) { token = null; }

  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (attrs[k] === undefined || attrs[k] === null) continue;
      if (k === "text") node.textContent = String(attrs[k]);
      else if (k === "cls") node.className = attrs[k];
      else node.setAttribute(k, String(attrs[k]));
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined || c === false) continue;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return node;
  }
  function kv(label, value) { return el("span", { cls: "kv" }, label + " ", el("b", { text: value })); }
  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "never";
    if (seconds < 90) return seconds + " s ago";
    if (seconds < 5400) return Math.round(seconds / 60) + " min ago";
    if (seconds < 172800) return Math.round(seconds / 3600) + " h ago";
    return Math.round(seconds / 86400) + " days ago";
  }
  function clock(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }
  function setLive(state, text) {
    var live = $("live");
    live.setAttribute("data-state", state);
    $("live-text").textContent = text;
  }

  function showLogin(message) {
    stop();
    $("login").hidden = false;
    $("logout").hidden = true;
    $("summary").replaceChildren();
    $("clusters").replaceChildren();
    $("footer").textContent = "";
    var err = $("login-error");
    err.hidden = !message;
    err.textContent = message || "";
    setLive("idle", "signed out");
    $("token").focus();
  }

  var MAX_ROWS = 50;

  function rowState(r) {
    if (r.ejected) return "ejected";
    if (!r.healthy) return "unhealthy";
    return "serving";
  }

  // The status lists each node once per cluster; a Service's rows join its
  // endpoints (Local) or every node of the cluster (Cluster) with that list and
  // the edge state of the origin at the Service's NodePort.
  function serviceRows(svc, nodes) {
    var port = svc.nodePort;
    function row(n, weight, healthy) {
      var o = null;
      (n.origins || []).forEach(function (x) { if (x.port === port) o = x; });
      return {
        node: n.name, address: n.address, port: port, zone: n.zone, healthy: healthy, weight: weight,
        ejected: o ? o.ejected : false, ejectedUntil: o ? o.ejectedUntil : null, ejections: o ? o.ejections : 0,
        consecutiveFailures: o ? o.consecutiveFailures : 0, lastError: o ? o.lastError : null, inFlight: o ? o.inFlight : 0
      };
    }
    if (svc.endpoints) {
      var rows = [];
      svc.endpoints.forEach(function (ep) {
        var n = nodes.byName[ep.node];
        if (n) rows.push(row(n, ep.weight, ep.healthy));
      });
      return rows;
    }
    return nodes.list.map(function (n) { return row(n, 1, n.healthy); });
  }

  function renderService(svc, nodes, port) {
    var serving = svc.counts.serving;
    var total = svc.counts.nodes;
    var pillCls = total === 0 || serving === 0 ? "bad" : serving < total ? "warn" : "ok";
    var pillText = total === 0 ? "no nodes" : serving + "/" + total + " nodes serving";
    var hosts = el("span", null);
    svc.hostnames.forEach(function (h, i) {
      if (i) hosts.appendChild(document.createTextNode(", "));
      var plain = h.indexOf("*") === -1;
      hosts.appendChild(plain ? el("a", { href: "http://" + h + (port ? ":" + port : "") + "/", target: "_blank", rel: "noreferrer", cls: "mono", text: h }) : el("code", { text: h }));
    });
    var policy = svc.policy || {};
    var title = el("div", { cls: "title" },
      el("span", { cls: "name", text: svc.namespace + "/" + svc.name }),
      el("span", { cls: "pill " + pillCls, "data-role": "service-health", text: pillText }),
      hosts,
      el("span", { cls: "tag", text: "externalTrafficPolicy: " + svc.trafficPolicy }),
      el("span", { cls: "tag", text: "NodePort " + svc.nodePort }),
      el("span", { cls: "tag", text: (policy.algorithm || "round-robin") + (policy.affinity && policy.affinity !== "none" ? ", affinity " + policy.affinity : "") }),
      svc.scheme === "https" ? el("span", { cls: "tag", text: "https to nodes" }) : null);
    var box = el("div", { cls: "service", "data-service": svc.namespace + "/" + svc.name, "data-serving": serving, "data-total": total }, title);
    if (total === 0) {
      box.appendChild(el("div", { cls: "empty", text: svc.trafficPolicy === "Local" ? "No node has a ready endpoint of this Service: requests get 503." : "No eligible nodes: requests get 503." }));
      return box;
    }
    var rows = serviceRows(svc, nodes);
    // Many nodes: show the ones not serving first, then the rest, up to MAX_ROWS.
    if (rows.length > MAX_ROWS) {
      rows = rows.filter(function (r) { return rowState(r) !== "serving"; }).concat(rows.filter(function (r) { return rowState(r) === "serving"; }));
    }
    var more = rows.length - MAX_ROWS;
    var head = el("tr", null, el("th", { text: "Node" }), el("th", { text: "Origin" }), el("th", { text: "Agent health check" }),
      el("th", { text: "Edge (passive)" }), el("th", { cls: "num", text: "Weight" }), el("th", { cls: "num", text: "In flight" }), el("th", { cls: "num", text: "Failures" }), el("th", { text: "Last error" }));
    var body = el("tbody", null);
    rows.slice(0, MAX_ROWS).forEach(function (n) {
      var state = rowState(n);
      var edge = n.ejected
        ? el("span", { cls: "pill bad", text: "ejected until " + clock(n.ejectedUntil) })
        : el("span", { cls: "pill ok", text: "in rotation" });
      body.appendChild(el("tr", { "data-node": n.node, "data-state": state, "data-healthy": n.healthy, "data-ejected": n.ejected },
        el("td", { cls: "mono", text: n.node }),
        el("td", { cls: "mono", text: n.address + ":" + n.port }),
        el("td", null, el("span", { cls: "pill " + (n.healthy ? "ok" : "bad"), text: n.healthy ? "healthy" : "unhealthy" })),
        el("td", { title: n.ejections ? "ejected " + n.ejections + " time(s) in a row; each ejection doubles the wait" : null }, edge, n.ejections > 1 ? el("span", { cls: "kv", text: " ×" + n.ejections }) : null),
        el("td", { cls: "num", text: n.weight }),
        el("td", { cls: "num", text: n.inFlight }),
        el("td", { cls: "num", text: n.consecutiveFailures }),
        el("td", { cls: "err mono", text: n.lastError || "" })));
    });
    var cols = el("colgroup", null, el("col", { cls: "c-node" }), el("col", { cls: "c-origin" }), el("col", { cls: "c-health" }), el("col", { cls: "c-edge" }),
      el("col", { cls: "c-num" }), el("col", { cls: "c-num" }), el("col", { cls: "c-num" }), el("col", { cls: "c-err" }));
    box.appendChild(el("table", null, cols, el("thead", null, head), body));
    if (more > 0) box.appendChild(el("div", { cls: "empty", "data-role": "more-nodes", text: "and " + more + " more" }));
    return box;
  }

  function renderCluster(c, port) {
    var card = el("article", { cls: "cluster", "data-cluster": c.name, "data-generation": c.generation === null ? "" : c.generation });
    card.appendChild(el("div", { cls: "head" },
      el("h2", { text: "cluster " + c.name }),
      kv("generation", c.generation === null ? "none" : String(c.generation)),
      kv("published", c.publishedAt ? ago(c.ageSeconds) : "never"),
      kv("loaded here", c.loadedAt ? clock(c.loadedAt) : "not yet"),
      kv("from", c.source || "-")));
    if (c.lastError) card.appendChild(el("div", { cls: "banner bad", "data-role": "cluster-error", text: c.lastError }));
    if (c.generation === null) {
      card.appendChild(el("div", { cls: "empty", text: "No snapshot for this cluster yet: is its sync agent running and pointed at this worker?" }));
      return card;
    }
    if (c.ageSeconds !== null && c.ageSeconds > 3600) {
      card.appendChild(el("div", { cls: "banner warn", text: "This snapshot is " + ago(c.ageSeconds).replace(" ago", "") + " old. The agent pushes on every change; a quiet cluster is fine, but check the agent if you expected changes." }));
    }
    if (c.services.length === 0) card.appendChild(el("div", { cls: "empty", text: "The snapshot has no Services." }));
    var nodes = { list: c.nodes || [], byName: Object.create(null) };
    nodes.list.forEach(function (n) { nodes.byName[n.name] = n; });
    c.services.forEach(function (s) { card.appendChild(renderService(s, nodes, port)); });
    if (c.gateway) card.appendChild(renderGateway(c.gateway));
    return card;
  }

  // Gateway API routes: hostname → route → rules (matches, backends by
  // weight), then what the edge does not serve and why. Every string here is
  // a tenant's (route names, patterns, header values, reasons): text only.
  function lines(list) {
    var cell = el("td", { cls: "mono wrap" });
    list.forEach(function (t) { cell.appendChild(el("div", { text: t })); });
    return cell;
  }
  function renderGateway(g) {
    var box = el("div", { cls: "service gateway", "data-role": "gateway" });
    box.appendChild(el("div", { cls: "title" },
      el("span", { cls: "name", text: "Gateway API routes" }),
      el("span", { cls: "tag", text: g.routes + " route attachment" + (g.routes === 1 ? "" : "s") }),
      g.refused.length ? el("span", { cls: "pill warn", text: (g.refused.length + g.moreRefused) + " not served" }) : null));
    var body = el("tbody");
    g.hostnames.forEach(function (h) {
      h.routes.forEach(function (r, i) {
        r.rules.forEach(function (rule, j) {
          var backends = rule.backends.map(function (b) {
            return (b.backend || "invalid backendRef (500): " + b.invalid) + " · weight " + b.weight;
          }).concat(rule.filters);
          body.appendChild(el("tr", { "data-host": h.hostname, "data-route": r.route, "data-rule": j },
            el("td", { cls: "mono wrap", text: i === 0 && j === 0 ? h.hostname : "" }),
            el("td", { cls: "mono wrap", text: j === 0 ? r.route : "" }),
            lines(rule.matches),
            lines(backends.length ? backends : ["no backend: 500"])));
        });
      });
      if (h.moreRoutes > 0) body.appendChild(el("tr", null, el("td"), el("td", { cls: "empty", text: "and " + h.moreRoutes + " more routes" }), el("td"), el("td")));
    });
    var head = el("tr", null, el("th", { text: "Hostname" }), el("th", { text: "HTTPRoute" }), el("th", { text: "Matches" }), el("th", { text: "Backends and filters" }));
    box.appendChild(el("table", { "data-role": "gateway-routes" }, el("thead", null, head), body));
    if (g.moreHostnames > 0) box.appendChild(el("div", { cls: "empty", text: "and " + g.moreHostnames + " more hostnames" }));
    if (g.refused.length) {
      var rbody = el("tbody");
      g.refused.forEach(function (x) {
        rbody.appendChild(el("tr", { "data-role": "route-refused", "data-route": x.route },
          el("td", { cls: "mono wrap", text: x.route }),
          el("td", { cls: "mono wrap", text: x.gateway || "" }),
          el("td", { cls: "err", text: x.reason })));
      });
      var rhead = el("tr", null, el("th", { text: "Not served" }), el("th", { text: "Gateway" }), el("th", { text: "Why" }));
      box.appendChild(el("table", { "data-role": "gateway-refused" }, el("thead", null, rhead), rbody));
      if (g.moreRefused > 0) box.appendChild(el("div", { cls: "empty", text: "and " + g.moreRefused + " more" }));
    }
    return box;
  }

  // Hostnames several clusters claim, or a steering rule covers: which
  // cluster serves, the order for this browser's own location, and why a
  // cluster is skipped or refused.
  function renderHostnames(steering) {
    var box = $("hostnames");
    var list = (steering && steering.hostnames) || [];
    if (!steering || (list.length === 0 && !steering.error)) { box.replaceChildren(); return; }
    var card = el("article", { cls: "cluster hostnames", "data-role": "hostnames" });
    var where = steering.sample || {};
    var sample = [where.country, where.continent, where.position ? where.position.lat + "," + where.position.lon : null].filter(Boolean).join(" ");
    card.appendChild(el("div", { cls: "head" },
      el("h2", { text: "hostnames served by several clusters" }),
      kv("steering", steering.source),
      kv("stale after", steering.staleAfterSeconds === null ? "never" : steering.staleAfterSeconds + " s"),
      kv("order shown for", sample || "no location")));
    if (steering.error) card.appendChild(el("div", { cls: "banner bad", "data-role": "steering-error", text: steering.error + (steering.source === "last-good" ? " (the last good setting keeps serving)" : "") }));
    (steering.warnings || []).forEach(function (w) { card.appendChild(el("div", { cls: "banner warn", text: w })); });
    var body = el("tbody");
    list.forEach(function (h) {
      var skipped = Object.create(null);
      (h.skipped || []).forEach(function (s) { skipped[s.cluster] = s.reason; });
      var order = h.order || (h.owner ? [h.owner] : []);
      var clusters = order.concat(h.clusters.filter(function (c) { return order.indexOf(c) === -1; }));
      clusters.forEach(function (c, i) {
        var pos = order.indexOf(c);
        var refused = h.refused.indexOf(c) !== -1;
        var state = pos !== -1 ? "ok" : refused ? "bad" : "warn";
        var label = pos !== -1 ? (pos === 0 ? "serves" : "fallback " + pos) : refused ? "refused" : "skipped";
        var reason = skipped[c] || (refused ? (h.owner ? "cluster " + h.owner + " claimed it first; add an EDGELB_STEERING rule to let several serve" : "the steering rule does not list this cluster") : "");
        body.appendChild(el("tr", { "data-host": h.pattern, "data-cluster": c, "data-state": state },
          el("td", { text: i === 0 ? h.pattern : "" }),
          el("td", { text: i === 0 ? (h.steering ? h.steering.policy : "first claim") : "" }),
          el("td", { text: c }),
          el("td", null, el("span", { cls: "pill " + state, text: label })),
          el("td", { cls: "reason", text: reason })));
      });
    });
    var head = el("tr", null, el("th", { text: "hostname" }), el("th", { text: "policy" }), el("th", { text: "cluster" }), el("th", { text: "role" }), el("th", { text: "why" }));
    card.appendChild(el("table", null, el("thead", null, head), body));
    box.replaceChildren(card);
  }

  function render(st) {
    renderHostnames(st.steering);
    var port = location.port;
    var services = 0, nodesDown = 0, degraded = 0, ejected = 0, errors = 0;
    st.clusters.forEach(function (c) {
      if (c.lastError) errors++;
      c.services.forEach(function (s) {
        services++;
        var down = s.counts.nodes - s.counts.serving;
        nodesDown += down;
        if (down > 0 || s.counts.nodes === 0) degraded++;
      });
      (c.nodes || []).forEach(function (n) {
        (n.origins || []).forEach(function (o) { if (o.ejected) ejected++; });
      });
    });
    function stat(n, label, cls) { return el("div", { cls: "stat" + (cls ? " " + cls : "") }, el("div", { cls: "n", text: n }), el("div", { cls: "l", text: label })); }
    $("summary").replaceChildren(
      stat(st.clusters.length, "clusters"),
      stat(services, "services"),
      stat(degraded, "services degraded", degraded ? "warn" : ""),
      stat(nodesDown, "node entries not serving", nodesDown ? "bad" : ""),
      stat(ejected, "origins ejected by this isolate", ejected ? "bad" : ""));
    var list = st.clusters.map(function (c) { return renderCluster(c, port); });
    $("clusters").replaceChildren.apply($("clusters"), list);
    $("footer").textContent = "Worker isolate started " + clock(st.isolateStartedAt) + " · transport " + st.settings.transport +
      " · KV cache " + st.settings.cacheTtlSeconds + " s · health and ejections are this isolate's view; other Cloudflare locations keep their own.";
    document.title = (degraded ? "⚠ " + degraded + " degraded · " : "") + "edgelb status";
    document.body.setAttribute("data-loaded", "true");
  }

  function stop() { if (timer) clearTimeout(timer); timer = null; }

  function poll() {
    stop();
    if (!token) return showLogin("");
    fetch(STATUS_URL, { headers: { authorization: "Bearer " + token }, cache: "no-store" })
      .then(function (res) {
        if (res.status === 401) {
          try { sessionStorage.removeItem(KEY); } catch (e) {}
          token = null;
          showLogin("The worker refused that token.");
          return;
        }
        if (res.status === 403) {
          // A cluster's push token, or no token configured at all: either way not one that reads.
          try { sessionStorage.removeItem(KEY); } catch (e) {}
          token = null;
          showLogin("That token cannot read the status: use the read token (EDGELB_READ_TOKEN).");
          return;
        }
        if (!res.ok) throw new Error("HTTP " + res.status);
        return res.json().then(function (st) {
          $("login").hidden = true;
          $("logout").hidden = false;
          render(st);
          lastOk = Date.now();
          setLive("live", "live · updated " + clock(st.now));
          timer = setTimeout(poll, POLL_MS);
        });
      })
      .catch(function (err) {
        var since = lastOk ? " (last good update " + Math.round((Date.now() - lastOk) / 1000) + " s ago)" : "";
        setLive("stale", "cannot reach the worker: " + (err && err.message ? err.message : err) + since);
        timer = setTimeout(poll, POLL_MS);
      });
  }

  $("login").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var t = $("token").value.trim();
    if (!t) return;
    token = t;
    try { sessionStorage.setItem(KEY, t); } catch (e) {}
    $("token").value = "";
    poll();
  });
  $("logout").addEventListener("click", function () {
    try { sessionStorage.removeItem(KEY); } catch (e) {}
    token = null;
    showLogin("");
  });
  document.addEventListener("visibilitychange", function () { if (!document.hidden && token) poll(); });
  poll();
})();
`;
