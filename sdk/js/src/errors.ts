// Errors as the host and the Rust SDK name them, with the HTTP status each one answers.
import type { ErrorCode } from "linli:platform/types@0.1.0";

export type { ErrorCode };

const STATUS: Record<ErrorCode, number> = {
  "not-found": 404,
  "permission-denied": 403,
  "consent-required": 403,
  "invalid-argument": 400,
  conflict: 409,
  "limit-exceeded": 429,
  unavailable: 503,
  internal: 500,
};

/** A failure a route answers with: its code picks the HTTP status. */
export class LinliError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = "LinliError";
  }

  static notFound(message: string): LinliError {
    return new LinliError("not-found", message);
  }
  static invalid(message: string): LinliError {
    return new LinliError("invalid-argument", message);
  }
  static conflict(message: string): LinliError {
    return new LinliError("conflict", message);
  }
  static permissionDenied(message: string): LinliError {
    return new LinliError("permission-denied", message);
  }
  static internal(message: string): LinliError {
    return new LinliError("internal", message);
  }

  get status(): number {
    return STATUS[this.code] ?? 500;
  }

  /** The WIT record `types.error`, for `on-event`'s result. */
  toRecord(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

function isErrorRecord(value: unknown): value is { code: ErrorCode; message: string } {
  return typeof value === "object" && value !== null && typeof (value as { code?: unknown }).code === "string" && (value as { code: string }).code in STATUS;
}

/** A host call; its `result` error (thrown by the bindings with the record as `payload`) becomes a LinliError. */
export function call<T>(hostCall: () => T): T {
  try {
    return hostCall();
  } catch (e) {
    throw knownError(e) ?? e;
  }
}

/** A LinliError, or a host call's error record as one; undefined for anything else (a bug). */
export function knownError(e: unknown): LinliError | undefined {
  if (e instanceof LinliError) return e;
  const payload = (e as { payload?: unknown } | null)?.payload;
  if (isErrorRecord(payload)) return new LinliError(payload.code, payload.message);
  return undefined;
}

export function toLinliError(e: unknown): LinliError {
  return knownError(e) ?? new LinliError("internal", e instanceof Error ? e.message : String(e));
}

/** u64/s64 from the host are BigInts; amounts and versions here stay well within 2^53. */
export function toNumber(value: bigint): number {
  return Number(value);
}
