// An in-memory Workers KV namespace for plain workerd: the service behind a
// `kvNamespace` binding. workerd turns each KV call into an HTTP request to
// this service (GET/PUT/DELETE https://fake-host/<url-encoded key>, GET / to
// list); metadata travels in the CF-KV-Metadata header both ways; a 404
// answers `get` with null. Nothing is persisted: every row's
// workerd starts empty and edgelb's snapshot arrives through its push endpoint.
const store = new Map();

export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === "/" && request.method === "GET") {
      const prefix = url.searchParams.get("prefix") ?? "";
      const keys = [...store.keys()].filter((k) => k.startsWith(prefix)).sort().map((name) => ({ name }));
      return Response.json({ keys, list_complete: true });
    }
    const key = decodeURIComponent(url.pathname.slice(1));
    switch (request.method) {
      case "GET": {
        const entry = store.get(key);
        if (entry === undefined) return new Response(null, { status: 404 });
        return new Response(entry.value, { headers: entry.metadata === null ? {} : { "cf-kv-metadata": entry.metadata } });
      }
      case "PUT":
        store.set(key, { value: await request.arrayBuffer(), metadata: request.headers.get("cf-kv-metadata") });
        return new Response(null);
      case "DELETE":
        store.delete(key);
        return new Response(null);
      default:
        return new Response(`kv-memory: method ${request.method} not supported`, { status: 405 });
    }
  },
};
