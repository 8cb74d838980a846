// Loopback origins for the socket transport's tests (owned by that work).
export default async function setup() {
  return async () => {};
}
