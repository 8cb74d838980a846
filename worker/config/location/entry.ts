// The location copy's entry format: one cluster's stored KV value as a
// Response for the Cache API, and back. Pure (no Cache, no clock of its own).
//
// The cache is written only by this worker, but it is storage outside the
// isolate: an entry may be truncated, from an older worker version, for another
// cluster, or not ours at all. Every field is checked, a seal (SHA-256 over the
// head's fields and the body's digest) ties the headers together so none can
// change alone, and the body must match its digest and parse; anything else is
// refused with a reason, and the caller reads KV instead. Nothing refused is
// ever served. (A seal, not a secret: it catches damage, not a writer that
// could already write this zone's cache.)
import { parseSnapshot, type Snapshot } from "../../snapshot/schema.ts";
import { parseTombstone, type Tombstone } from "../stored.ts";

export const LOCATION_FORMAT = "edgelb.dev/location-copy/v1";
/**
 * The deployment an entry belongs to when none is named. caches.default is per
 * zone and location, not per worker: two edgelb deployments on one zone
 * (staging and production) share it, so each entry carries its deployment's
 * identity (EDGELB_INSTANCE, or the generations object's id) in its key and head.
 */
export const DEFAULT_INSTANCE = "default";
/** KV's largest value: nothing bigger can be a copy of one. */
export const MAX_ENTRY_BYTES = 25 * 1024 * 1024;
/** A copy read "in the future" by more than this is not trusted (clock skew within a location is far smaller). */
export const MAX_CLOCK_SKEW_MS = 60_000;
/** How long the Cache may keep an entry; freshness is decided by `x-edgelb-read-at`, not by this. */
export const ENTRY_MAX_AGE_S = 86_400;

const H = {
  format: "x-edgelb-format",
  instance: "x-edgelb-instance",
  cluster: "x-edgelb-cluster",
  kind: "x-edgelb-kind",
  readAt: "x-edgelb-read-at",
  epoch: "x-edgelb-epoch",
  generation: "x-edgelb-generation",
  bytes: "x-edgelb-bytes",
  sha256: "x-edgelb-body-sha256",
  heartbeat: "x-edgelb-heartbeat",
  seal: "x-edgelb-seal",
} as const;

/** A cluster's KV key as read: nothing, a snapshot (with its install epoch) or a deletion. */
export type StoredValue =
  | { kind: "missing" }
  /** `heartbeatAt`: the agent's last heartbeat as recorded with it (worker clock, or bounded by it), ms. */
  | { kind: "snapshot"; text: string; snapshot: Snapshot; epoch: number | undefined; heartbeatAt?: number }
  | { kind: "tombstone"; text: string; tombstone: Tombstone };

/** What the headers alone say: enough to skip reading a body the isolate already has. */
export interface EntryHead {
  /** The deployment that wrote it (DEFAULT_INSTANCE when none is named). */
  instance?: string;
  cluster: string;
  kind: StoredValue["kind"];
  /** When KV was read (or written by a push) for this value, ms. */
  readAt: number;
  epoch: number | undefined;
  /** Snapshot or tombstone generation; 0 for missing. */
  generation: number;
  bytes: number;
  /** SHA-256 of the body, hex. */
  sha256: string;
  /** The agent's last heartbeat known when this entry was written (snapshots only), ms. Not part of the tag: a newer heartbeat alone needs no body read. */
  heartbeatAt?: number;
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

const KINDS = new Set(["missing", "snapshot", "tombstone"]);
const DIGITS = /^(0|[1-9]\d{0,15})$/;
const HEX64 = /^[0-9a-f]{64}$/;

function nonNegativeInt(s: string | null): number | undefined {
  if (s === null || !DIGITS.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The version tag of a value: equal tags mean the isolate already considered it. */
export function tagOf(kind: StoredValue["kind"], epoch: number | undefined, generation: number, sha256: string): string {
  return `${kind}:${epoch ?? "-"}:${generation}:${sha256}`;
}

export function headTag(h: EntryHead): string {
  return tagOf(h.kind, h.epoch, h.generation, h.sha256);
}

/** The seal over every field of the head (the body is in it through its digest). */
function sealOf(h: EntryHead): Promise<string> {
  const fields = [LOCATION_FORMAT, h.instance ?? DEFAULT_INSTANCE, h.cluster, h.kind, h.readAt, h.epoch ?? "-", h.generation, h.bytes, h.sha256];
  // Appended only when present: entries written before heartbeats keep their seal.
  if (h.heartbeatAt !== undefined) fields.push(`heartbeat=${h.heartbeatAt}`);
  return sha256Hex(new TextEncoder().encode(fields.join("\n")));
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  let out = "";
  for (const b of d) out += b.toString(16).padStart(2, "0");
  return out;
}

function generationOf(v: StoredValue): number {
  return v.kind === "snapshot" ? v.snapshot.generation : v.kind === "tombstone" ? v.tombstone.generation : 0;
}

/** The entry for `value` read from KV (or pushed) at `readAt`. */
export async function encodeEntry(cluster: string, value: StoredValue, readAt: number, instance: string = DEFAULT_INSTANCE): Promise<{ headers: Headers; body: Uint8Array; head: EntryHead }> {
  const body = new TextEncoder().encode(value.kind === "missing" ? "" : value.text);
  const head: EntryHead = {
    instance,
    cluster,
    kind: value.kind,
    readAt: Math.floor(readAt),
    epoch: value.kind === "snapshot" ? value.epoch : value.kind === "tombstone" ? value.tombstone.installEpoch : undefined,
    generation: generationOf(value),
    bytes: body.byteLength,
    sha256: await sha256Hex(body),
    ...(value.kind === "snapshot" && value.heartbeatAt !== undefined ? { heartbeatAt: Math.floor(value.heartbeatAt) } : {}),
  };
  const headers = new Headers({
    "content-type": "application/octet-stream",
    "cache-control": `public, max-age=${ENTRY_MAX_AGE_S}`,
    [H.format]: LOCATION_FORMAT,
    [H.instance]: instance,
    [H.cluster]: cluster,
    [H.kind]: head.kind,
    [H.readAt]: String(head.readAt),
    [H.generation]: String(head.generation),
    [H.bytes]: String(head.bytes),
    [H.sha256]: head.sha256,
    [H.seal]: await sealOf(head),
  });
  if (head.epoch !== undefined) headers.set(H.epoch, String(head.epoch));
  if (head.heartbeatAt !== undefined) headers.set(H.heartbeat, String(head.heartbeatAt));
  return { headers, body, head };
}

/** Checks an entry's headers for `cluster` at time `now`; the body is not looked at. */
export async function decodeHead(headers: Headers, cluster: string, now: number, instance: string = DEFAULT_INSTANCE): Promise<Decoded<EntryHead>> {
  const format = headers.get(H.format);
  if (format !== LOCATION_FORMAT) return { ok: false, reason: format === null ? "not an edgelb entry" : `unknown format "${format.slice(0, 64)}"` };
  const i = headers.get(H.instance);
  if (i !== instance) return { ok: false, reason: `entry of another edgelb deployment ("${(i ?? "").slice(0, 63)}")` };
  const c = headers.get(H.cluster);
  if (c !== cluster) return { ok: false, reason: `entry of another cluster ("${(c ?? "").slice(0, 63)}")` };
  const kind = headers.get(H.kind);
  if (kind === null || !KINDS.has(kind)) return { ok: false, reason: "unknown kind" };
  const readAt = nonNegativeInt(headers.get(H.readAt));
  if (readAt === undefined) return { ok: false, reason: "bad read time" };
  if (readAt > now + MAX_CLOCK_SKEW_MS) return { ok: false, reason: "read time in the future" };
  const generation = nonNegativeInt(headers.get(H.generation));
  if (generation === undefined) return { ok: false, reason: "bad generation" };
  const rawEpoch = headers.get(H.epoch);
  const epoch = rawEpoch === null ? undefined : nonNegativeInt(rawEpoch);
  if (rawEpoch !== null && epoch === undefined) return { ok: false, reason: "bad install epoch" };
  const bytes = nonNegativeInt(headers.get(H.bytes));
  if (bytes === undefined) return { ok: false, reason: "bad length" };
  if (bytes > MAX_ENTRY_BYTES) return { ok: false, reason: `oversized (${bytes} bytes, the limit is ${MAX_ENTRY_BYTES})` };
  const length = headers.get("content-length");
  if (length !== null && length !== String(bytes)) return { ok: false, reason: "length does not match" };
  const sha256 = headers.get(H.sha256);
  if (sha256 === null || !HEX64.test(sha256)) return { ok: false, reason: "bad digest" };
  if (kind === "missing" && (bytes !== 0 || generation !== 0 || epoch !== undefined)) return { ok: false, reason: "missing entry with content" };
  const rawBeat = headers.get(H.heartbeat);
  const heartbeatAt = rawBeat === null ? undefined : nonNegativeInt(rawBeat);
  if (rawBeat !== null && (heartbeatAt === undefined || kind !== "snapshot")) return { ok: false, reason: "bad heartbeat time" };
  if (heartbeatAt !== undefined && heartbeatAt > now + MAX_CLOCK_SKEW_MS) return { ok: false, reason: "heartbeat time in the future" };
  const head: EntryHead = { instance, cluster, kind: kind as EntryHead["kind"], readAt, epoch, generation, bytes, sha256, ...(heartbeatAt !== undefined ? { heartbeatAt } : {}) };
  if (headers.get(H.seal) !== (await sealOf(head))) return { ok: false, reason: "seal does not match its head" };
  return { ok: true, value: head };
}

/** Checks the body against its head and parses it: the value, or why it is refused. */
export async function decodeBody(head: EntryHead, body: Uint8Array): Promise<Decoded<StoredValue>> {
  if (body.byteLength !== head.bytes) return { ok: false, reason: `truncated or padded (${body.byteLength} bytes, expected ${head.bytes})` };
  if ((await sha256Hex(body)) !== head.sha256) return { ok: false, reason: "digest does not match" };
  if (head.kind === "missing") return { ok: true, value: { kind: "missing" } };
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(body);
  } catch {
    return { ok: false, reason: "not UTF-8" };
  }
  if (head.kind === "tombstone") {
    const tombstone = parseTombstone(text);
    if (!tombstone) return { ok: false, reason: "not a tombstone" };
    if (tombstone.cluster !== head.cluster) return { ok: false, reason: "tombstone of another cluster" };
    if (tombstone.generation !== head.generation || tombstone.installEpoch !== head.epoch) return { ok: false, reason: "tombstone does not match its head" };
    return { ok: true, value: { kind: "tombstone", text, tombstone } };
  }
  const parsed = parseSnapshot(text);
  if (!parsed.ok) return { ok: false, reason: `invalid snapshot: ${parsed.error.slice(0, 200)}` };
  if (parsed.snapshot.cluster !== head.cluster) return { ok: false, reason: "snapshot of another cluster" };
  if (parsed.snapshot.generation !== head.generation) return { ok: false, reason: "snapshot does not match its head" };
  return { ok: true, value: { kind: "snapshot", text, snapshot: parsed.snapshot, epoch: head.epoch, ...(head.heartbeatAt !== undefined ? { heartbeatAt: head.heartbeatAt } : {}) } };
}
