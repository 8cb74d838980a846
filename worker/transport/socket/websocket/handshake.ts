// The client half of the opening handshake (RFC 6455 §4.1): a fresh key, and
// the checks on the server's 101 that prove it speaks WebSocket to us.
import type { ResponseHead } from "../response-parser.ts";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

export function newKey(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
}

export async function acceptFor(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(key + GUID));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

function field(head: ResponseHead, name: string): string | undefined {
  const values = head.headers.filter(([n]) => n === name).map(([, v]) => v);
  return values.length === 0 ? undefined : values.join(", ");
}

function tokens(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== "");
}

/** Why the 101 does not complete our handshake, or null when it does. */
export function handshakeProblem(
  head: ResponseHead,
  expectedAccept: string,
  offeredProtocols: readonly string[],
): string | null {
  if (!tokens(field(head, "upgrade")).includes("websocket")) return "101 without Upgrade: websocket";
  if (!tokens(field(head, "connection")).includes("upgrade")) return "101 without Connection: Upgrade";
  const accept = field(head, "sec-websocket-accept");
  if (accept !== expectedAccept) return `Sec-WebSocket-Accept ${JSON.stringify(accept ?? null)} does not match the key`;
  // No extension was offered (no permessage-deflate), so none may be accepted.
  if (field(head, "sec-websocket-extensions") !== undefined) return "an extension was accepted that was not offered";
  const protocol = field(head, "sec-websocket-protocol");
  if (protocol !== undefined && !offeredProtocols.includes(protocol)) {
    return `subprotocol ${JSON.stringify(protocol)} was not offered`;
  }
  return null;
}

export function offeredProtocols(headers: Headers): string[] {
  return (headers.get("sec-websocket-protocol") ?? "")
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");
}
