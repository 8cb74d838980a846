// Where a client is (request.cf) and how far apart two places are.

export interface LatLon {
  lat: number;
  lon: number;
}

const EARTH_RADIUS_KM = 6371.0088;
const RAD = Math.PI / 180;

/** Great-circle distance in km (haversine: accurate at short distances, where cosine rounding is not). */
export function haversineKm(a: LatLon, b: LatLon): number {
  const dLat = (b.lat - a.lat) * RAD;
  const dLon = (b.lon - a.lon) * RAD;
  const s = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * RAD) * Math.cos(b.lat * RAD) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(s)));
}

/** What steering reads of a request's origin. */
export interface ClientPlace {
  /** ISO 3166-1 alpha-2, upper case (cf.country). */
  country?: string;
  /** AF AN AS EU NA OC SA (cf.continent). */
  continent?: string;
  /** cf.latitude / cf.longitude, when both are valid coordinates. */
  position?: LatLon;
}

/** Reads request.cf defensively: Cloudflare sends latitude/longitude as strings, tests may send numbers. */
export function clientPlace(cf: Record<string, unknown> | undefined): ClientPlace {
  if (!cf) return {};
  const out: ClientPlace = {};
  if (typeof cf.country === "string" && /^[A-Za-z]{2}$/.test(cf.country)) out.country = cf.country.toUpperCase();
  if (typeof cf.continent === "string" && /^[A-Za-z]{2}$/.test(cf.continent)) out.continent = cf.continent.toUpperCase();
  const lat = coordinate(cf.latitude, 90);
  const lon = coordinate(cf.longitude, 180);
  if (lat !== undefined && lon !== undefined) out.position = { lat, lon };
  return out;
}

function coordinate(v: unknown, limit: number): number | undefined {
  const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
  return Number.isFinite(n) && Math.abs(n) <= limit ? n : undefined;
}
