// Which responses are the edge's own answers (its 5xx "no server is ready", "could not be
// reached", "did not answer in time", …) rather than an origin's: a route's response edits
// (Gateway ResponseHeaderModifier) apply to origin answers only, so a rule setting
// Cache-Control for its app never makes the edge's `no-store` 503 cacheable (wx18).
const edgeAnswers = new WeakSet<Response>();

/** Marks a response the edge built itself; returns it. */
export function edgeAnswer(response: Response): Response {
  edgeAnswers.add(response);
  return response;
}

/** True when the edge built this response (not an origin). */
export function isEdgeAnswer(response: Response): boolean {
  return edgeAnswers.has(response);
}
