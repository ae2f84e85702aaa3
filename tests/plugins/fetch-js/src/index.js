// Routes as a service worker answers them; `fetch` reaches only the origins the county granted.
addEventListener("fetch", (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  const url = new URL(request.url);
  switch (url.pathname) {
    case "/hello":
      return new Response("hello from javascript");
    case "/echo":
      return Response.json({
        method: request.method,
        path: url.pathname,
        query: url.search,
        tenant: request.headers.get("x-linli-tenant"),
        body: await request.text(),
      });
    case "/fetch": {
      try {
        const response = await fetch(url.searchParams.get("url") ?? "");
        return Response.json({ status: response.status, body: await response.text() });
      } catch (error) {
        return Response.json({ error: String(error) }, { status: 502 });
      }
    }
    default:
      return new Response(`no route for ${request.method} ${url.pathname}`, { status: 404 });
  }
}
