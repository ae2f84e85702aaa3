// Words a failed request for people, in their language: the host's error code picks the
// sentence from the catalogue (zh-CN.js, en.js) and the error's params fill it in. A code
// the catalogue does not know (a plugin's own) falls back to the sentence of its HTTP status,
// and no answer at all to `network`. The host's English `message` is for developers.
"use strict";
{
  const BY_STATUS = {
    0: "network", 400: "invalid-argument", 401: "unauthenticated", 403: "permission-denied", 404: "not-found", 409: "conflict",
    413: "limit-exceeded", 422: "invalid-argument", 423: "locked", 429: "too-many-requests", 500: "internal", 502: "unavailable",
    503: "unavailable", 504: "unavailable",
  };
  const messages = (globalThis.LinliMessages ??= {});
  // `reply` is `{status, data}` as the apps' fetch helpers return it; `name` turns a node id
  // into its name (the console knows the tree; elsewhere the id stays).
  messages.failure = (lang, reply, name = (id) => id) => {
    const catalogue = messages[lang] || messages["zh-CN"];
    const error = reply?.data?.error;
    const code = typeof error?.code === "string" && error.code in catalogue.errors ? error.code : BY_STATUS[reply?.status ?? 0];
    const say = catalogue.errors[code];
    if (typeof say === "function") return say(error?.params && typeof error.params === "object" ? error.params : {}, name);
    return say || catalogue.error_generic;
  };
  // A ticket category's name: the host's own from the catalogue, a county's own as it named it.
  messages.categoryName = (lang, ticketOrCategory) => {
    const id = ticketOrCategory.category ?? ticketOrCategory.id;
    return (messages[lang] || messages["zh-CN"]).ticket_categories[id] || ticketOrCategory.category_name || ticketOrCategory.name || id;
  };
  // The code the sentence came from, for the pages' `data-code` attributes and tests.
  messages.codeOf = (reply) => reply?.data?.error?.code || BY_STATUS[reply?.status ?? 0] || "";
}
