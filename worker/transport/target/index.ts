// The origin-form request target (path and query) of an absolute URL that the
// runtime has already parsed and serialized (Request.url), read with string
// operations: a `new URL` per request costs more than the rest of the target's
// handling. Equal to `new URL(url).pathname + new URL(url).search` for every
// serialized special URL (http, https): property-tested beside this file.

/** Path and query of a serialized http(s) URL; the fragment is dropped. */
export function pathAndQuery(url: string): string {
  const authority = url.indexOf("//");
  let start = authority === -1 ? -1 : url.indexOf("/", authority + 2);
  // A query or fragment right after the authority ("http://h?x") means path "/".
  const early = authority === -1 ? -1 : firstOf(url, authority + 2, start === -1 ? url.length : start);
  if (early !== -1) return "/" + stripFragment(url.slice(early));
  if (start === -1) return "/";
  return stripFragment(url.slice(start));
}

/** True when the serialized URL's scheme is https. */
export function isHttps(url: string): boolean {
  return url.startsWith("https:");
}

function firstOf(url: string, from: number, to: number): number {
  for (let i = from; i < to; i++) {
    const c = url.charCodeAt(i);
    if (c === 63 /* ? */ || c === 35 /* # */) return i;
  }
  return -1;
}

/** Drops the fragment, and an empty query ("?" alone), as URL.search does. */
function stripFragment(s: string): string {
  const hash = s.indexOf("#");
  const t = hash === -1 ? s : s.slice(0, hash);
  return t.indexOf("?") === t.length - 1 ? t.slice(0, -1) : t;
}
