//! Following a host listing's pages to the end: one loop for every `*_all` helper.

/// Every item of the pages `fetch` returns, from the first (cursor `None`) until a page has no
/// next cursor. `fetch` answers a page's items and its next cursor.
pub(crate) fn all_pages<T, E>(mut fetch: impl FnMut(Option<&str>) -> Result<(Vec<T>, Option<String>), E>) -> Result<Vec<T>, E> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let (items, next) = fetch(cursor.as_deref())?;
        out.extend(items);
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
}
