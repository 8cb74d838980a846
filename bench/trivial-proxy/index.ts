// The floor of the runtime: a worker that forwards every request to one fixed
// origin with fetch() and returns the answer as is. No routing, no config, no
// retries. edgelb's rows are compared against this one, so the ratio is the
// cost of edgelb's own logic, not of workerd's subrequest machinery.
interface Env {
  BENCH_ORIGIN: string;
}

export default {
  fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    return fetch(env.BENCH_ORIGIN + url.pathname + url.search, request);
  },
};
