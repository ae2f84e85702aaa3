// Following a host listing's pages to the end: one loop for every `*All` helper. A module
// of its own, importing no capability, so any module may use it.

/** Every item of the pages `page` returns, from the first until a page has no next cursor. */
export function allPages<T>(page: (cursor: string | undefined) => { items: T[]; nextCursor?: string }): T[] {
  const out: T[] = [];
  let cursor: string | undefined;
  do {
    const next = page(cursor);
    out.push(...next.items);
    cursor = next.nextCursor;
  } while (cursor !== undefined);
  return out;
}
