// What a failed call says, read from the google.rpc details the service attaches to every error.
import { Code, ConnectError } from "@connectrpc/connect";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  RequestInfoSchema,
  RetryInfoSchema,
} from "../gen/google/rpc/error_details_pb.js";

export interface FieldViolation {
  /** The field as the caller sent it, e.g. `credentials.account_sid`. */
  field: string;
  description: string;
}

export interface ErrorDetails {
  code: Code;
  /** The code's name as gRPC spells it, e.g. `INVALID_ARGUMENT`. */
  codeName: string;
  /** The server's message, without the code prefix ConnectError adds. */
  message: string;
  /** google.rpc.ErrorInfo reason, e.g. `INTEGRATION_NOT_FOUND`; empty when the error has none. */
  reason: string;
  domain: string;
  metadata: Record<string, string>;
  fieldViolations: FieldViolation[];
  /** RequestInfo's request id, to quote to an operator. */
  requestId: string;
  /** RetryInfo's delay, when the server says when to retry. */
  retryDelayMs?: number;
}

/** Reads the ErrorInfo reason and metadata, BadRequest field violations, request id and retry delay. */
export function errorInfo(err: unknown): ErrorDetails {
  const e = ConnectError.from(err);
  const info = e.findDetails(ErrorInfoSchema)[0];
  const retry = e.findDetails(RetryInfoSchema)[0]?.retryDelay;
  return {
    code: e.code,
    codeName: codeName(e.code),
    message: e.rawMessage,
    reason: info?.reason ?? "",
    domain: info?.domain ?? "",
    metadata: { ...(info?.metadata ?? {}) },
    fieldViolations: e
      .findDetails(BadRequestSchema)
      .flatMap((b) => b.fieldViolations)
      .map((v) => ({ field: v.field, description: v.description })),
    requestId: e.findDetails(RequestInfoSchema)[0]?.requestId ?? "",
    retryDelayMs: retry ? Number(retry.seconds) * 1000 + Math.round(retry.nanos / 1e6) : undefined,
  };
}

/** `Code.InvalidArgument` -> `INVALID_ARGUMENT`, as gRPC spells it (`CANCELLED` too). */
export function codeName(code: Code): string {
  if (code === Code.Canceled) return "CANCELLED";
  return (Code[code] ?? "UNKNOWN").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}
