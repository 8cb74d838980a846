// Kubernetes `Status` objects: every error the fake API server returns is one,
// exactly as clients (client-go, client-node) expect to decode them.

export type StatusReason =
  | "BadRequest"
  | "Unauthorized"
  | "Forbidden"
  | "NotFound"
  | "AlreadyExists"
  | "Conflict"
  | "Invalid"
  | "Expired"
  | "Gone"
  | "MethodNotAllowed"
  | "UnsupportedMediaType"
  | "NotAcceptable"
  | "InternalError"
  | "ServiceUnavailable"
  | "Timeout"
  | "TooManyRequests";

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface Status {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Failure" | "Success";
  message?: string;
  reason?: StatusReason;
  details?: StatusDetails;
  code: number;
}

/** An error that the HTTP layer turns into a Status response. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: StatusReason,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
  }

  toStatus(): Status {
    return {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

/** Identifies a resource in messages the way the real server does: `services "web"`. */
export interface Subject {
  group: string;
  plural: string;
  kind: string;
  name: string;
}

function qualified(s: Subject): string {
  return s.group ? `${s.plural}.${s.group}` : s.plural;
}

export const errors = {
  notFound: (s: Subject) =>
    new ApiError(404, "NotFound", `${qualified(s)} "${s.name}" not found`, {
      name: s.name,
      group: s.group,
      kind: s.plural,
    }),
  alreadyExists: (s: Subject) =>
    new ApiError(409, "AlreadyExists", `${qualified(s)} "${s.name}" already exists`, {
      name: s.name,
      group: s.group,
      kind: s.plural,
    }),
  conflict: (s: Subject, why = "the object has been modified; please apply your changes to the latest version and try again") =>
    new ApiError(409, "Conflict", `Operation cannot be fulfilled on ${qualified(s)} "${s.name}": ${why}`, {
      name: s.name,
      group: s.group,
      kind: s.plural,
    }),
  invalid: (s: Subject, causes: StatusCause[]) =>
    new ApiError(
      422,
      "Invalid",
      `${s.kind} "${s.name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(", ")}`,
      { name: s.name, group: s.group, kind: s.kind, causes },
    ),
  badRequest: (message: string) => new ApiError(400, "BadRequest", message),
  expired: (message: string) => new ApiError(410, "Expired", message),
  gone: (message: string) => new ApiError(410, "Gone", message),
  methodNotAllowed: (message = "the server does not allow this method on the requested resource") =>
    new ApiError(405, "MethodNotAllowed", message),
  unsupportedMediaType: (message: string) => new ApiError(415, "UnsupportedMediaType", message),
  unauthorized: () => new ApiError(401, "Unauthorized", "Unauthorized"),
  pathNotFound: (path: string) => new ApiError(404, "NotFound", `the server could not find the requested resource (path ${path})`),
  internal: (message: string) => new ApiError(500, "InternalError", `Internal error occurred: ${message}`),
};

/** A field-level validation failure, collected into one 422 Invalid. */
export function cause(field: string, reason: "FieldValueInvalid" | "FieldValueRequired" | "FieldValueDuplicate" | "FieldValueForbidden" | "FieldValueNotSupported", message: string): StatusCause {
  return { reason, message, field };
}
