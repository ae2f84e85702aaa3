// Requests and responses as routes see them.
import type { Request as WitRequest, Response as WitResponse } from "linli:platform/http-types@0.1.0";
import { LinliError } from "./errors";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

export class Request {
  readonly method: string;
  /** The path below the plugin's prefix, always starting with `/`. */
  readonly path: string;
  /** The raw query string without `?`. */
  readonly query: string;
  readonly headers: Array<[string, string]>;
  readonly body: Uint8Array;

  constructor(raw: WitRequest) {
    this.method = raw.method;
    this.path = raw.path;
    this.query = raw.query;
    this.headers = raw.headers;
    this.body = raw.body;
  }

  /** A header by name, any case. */
  header(name: string): string | undefined {
    const wanted = name.toLowerCase();
    return this.headers.find(([n]) => n.toLowerCase() === wanted)?.[1];
  }

  /** The community (or other tenant node) this request is for, as the host says. */
  tenant(): string {
    return this.header("x-linli-tenant") ?? "";
  }

  /** A query parameter, percent-decoded (`+` as a space). */
  queryParam(name: string): string | undefined {
    for (const pair of this.query.split("&")) {
      if (pair === "") continue;
      const at = pair.indexOf("=");
      const [key, value] = at < 0 ? [pair, ""] : [pair.slice(0, at), pair.slice(at + 1)];
      if (percentDecode(key) === name) return percentDecode(value);
    }
    return undefined;
  }

  text(): string {
    return decoder.decode(this.body);
  }

  /** The body as JSON; a body that is not JSON is the caller's mistake (400). */
  json<T = unknown>(): T {
    try {
      return JSON.parse(this.text()) as T;
    } catch (e) {
      throw LinliError.invalid(`request body is not the expected JSON: ${e instanceof Error ? e.message : e}`);
    }
  }
}

function percentDecode(text: string): string {
  const spaced = text.replace(/\+/g, " ");
  try {
    return decodeURIComponent(spaced);
  } catch {
    // Stray `%` signs are kept as they are, as the Rust SDK does.
    return spaced.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  }
}

export interface Response {
  status: number;
  headers: Array<[string, string]>;
  body: Uint8Array;
}

export function respond(status: number, contentType: string, body: Uint8Array | string): Response {
  return { status, headers: [["content-type", contentType]], body: typeof body === "string" ? encoder.encode(body) : body };
}

export function json(status: number, value: unknown): Response {
  return respond(status, "application/json", JSON.stringify(value));
}

export function text(status: number, body: string): Response {
  return respond(status, "text/plain; charset=utf-8", body);
}

export function html(status: number, body: string): Response {
  return respond(status, "text/html; charset=utf-8", body);
}

export function withHeader(response: Response, name: string, value: string): Response {
  return { ...response, headers: [...response.headers, [name.toLowerCase(), value]] };
}

/** The JSON error body the host's apps understand: `{"error": {"code", "message"}}`. */
export function errorResponse(error: LinliError, status = error.status): Response {
  return json(status, { error: { code: error.code, message: error.message } });
}

export function toWit(response: Response): WitResponse {
  return { status: response.status, headers: response.headers, body: response.body };
}
