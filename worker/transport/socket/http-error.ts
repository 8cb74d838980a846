/** The origin's bytes are not valid HTTP/1.1. The transport maps it to MalformedResponseError. */
export class HttpParseError extends Error {
  override readonly name = "HttpParseError";
}
