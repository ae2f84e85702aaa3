// Routes by method and path pattern: literals, `:name` parameters and a trailing `*`.
import type { Request as WitRequest, Response as WitResponse } from "linli:platform/http-types@0.1.0";
import { LinliError, knownError } from "./errors";
import { Request, Response, errorResponse, toWit } from "./http";
import * as log from "./log";

export class Params {
  private readonly values: Map<string, string>;

  constructor(values: Map<string, string>) {
    this.values = values;
  }

  get(name: string): string | undefined {
    return this.values.get(name);
  }

  /** A path parameter the pattern declares; its absence is a 400. */
  require(name: string): string {
    const value = this.values.get(name);
    if (value === undefined) throw LinliError.invalid(`missing path parameter \`${name}\``);
    return value;
  }
}

export type Handler = (request: Request, params: Params) => Response;

interface Route {
  method: string;
  pattern: string[];
  handler: Handler;
}

function segments(path: string): string[] {
  return path.split("/").filter((s) => s !== "");
}

function match(pattern: string[], path: string[]): Params | undefined {
  const values = new Map<string, string>();
  for (let i = 0; i < pattern.length; i++) {
    const segment = pattern[i];
    if (segment === "*") {
      values.set("*", path.slice(i).join("/"));
      return new Params(values);
    }
    if (i >= path.length) return undefined;
    if (segment.startsWith(":")) values.set(segment.slice(1), path[i]);
    else if (segment !== path[i]) return undefined;
  }
  return pattern.length === path.length ? new Params(values) : undefined;
}

export class Router {
  private readonly routes: Route[] = [];

  route(method: string, pattern: string, handler: Handler): this {
    this.routes.push({ method: method.toUpperCase(), pattern: segments(pattern), handler });
    return this;
  }
  get(pattern: string, handler: Handler): this {
    return this.route("GET", pattern, handler);
  }
  post(pattern: string, handler: Handler): this {
    return this.route("POST", pattern, handler);
  }
  put(pattern: string, handler: Handler): this {
    return this.route("PUT", pattern, handler);
  }
  delete(pattern: string, handler: Handler): this {
    return this.route("DELETE", pattern, handler);
  }

  /** The response to one request: the first matching route's, 405 when only the method is wrong, 404 when no path matches. */
  dispatch(request: Request): Response {
    const path = segments(request.path);
    let pathMatched = false;
    for (const route of this.routes) {
      const params = match(route.pattern, path);
      if (!params) continue;
      pathMatched = true;
      if (route.method === request.method || (route.method === "GET" && request.method === "HEAD")) {
        try {
          return route.handler(request, params);
        } catch (e) {
          const known = knownError(e);
          if (known) return errorResponse(known);
          // Details go to the host's log, not to the caller.
          log.error(`${request.method} ${request.path} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
          return errorResponse(LinliError.internal("the plugin failed; the host's log has the details"));
        }
      }
    }
    if (pathMatched) return errorResponse(LinliError.invalid(`method ${request.method} not allowed on ${request.path}`), 405);
    return errorResponse(LinliError.notFound(`no route for ${request.method} ${request.path}`));
  }

  /** The `linli:platform/handler` export: `export const handler = router.handler();`. */
  handler(): { handle(request: WitRequest): WitResponse } {
    return { handle: (raw) => toWit(this.dispatch(new Request(raw))) };
  }
}
