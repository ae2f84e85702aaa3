"""Following a host listing's pages to the end: one loop for every `all_*` helper. A module
of its own, importing no capability, so any module may use it."""


def all_pages(page) -> list:
    """Every item of the pages `page(cursor)` returns, from the first until a page has no next cursor."""
    out = []
    cursor = None
    while True:
        next_page = page(cursor)
        out.extend(next_page.items)
        cursor = next_page.next_cursor
        if cursor is None:
            return out
