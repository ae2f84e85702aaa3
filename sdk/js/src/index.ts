// The Linli plugin SDK for TypeScript and JavaScript. A plugin module exports the handler of
// its router:
//
//   import { Router, json } from "@linli/sdk";
//   const router = new Router().get("/hello", (req) => json(200, { hello: req.tenant() }));
//   export const handler = router.handler();
//
// Each capability has its own module (`@linli/sdk/data`, `@linli/sdk/identity`, …): import
// only those your linli.toml requests, as the component may import only what was requested.
export { LinliError, call } from "./errors";
export type { ErrorCode } from "./errors";
export { Request, json, text, html, respond, withHeader, errorResponse } from "./http";
export type { Response } from "./http";
export { Router, Params } from "./router";
export type { Handler } from "./router";
export * as log from "./log";
