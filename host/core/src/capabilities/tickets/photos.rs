//! Photos of a work order (报事报修 with a picture of the broken light): at most
//! [`MAX_PHOTOS`] per ticket, each a JPEG, PNG or WebP of at most [`MAX_PHOTO_BYTES`], told
//! apart by their first bytes (never by what the uploader claims). Sealed like the ticket's
//! text: they show homes and people.
use super::{TicketError, Tickets};
use crate::store::now_millis;
use crate::store::vault::TICKET_PHOTO;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sqlx::Row;

pub const MAX_PHOTOS: i64 = 4;
pub const MAX_PHOTO_BYTES: usize = 2 * 1024 * 1024;

/// The image type of `bytes` by its signature, or `None` for anything else (an SVG, which
/// could carry a script, is not an image here).
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// One stored photo.
pub struct Photo {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl Tickets {
    /// Keep `image` as the ticket's next photo; its number.
    pub async fn add_photo(&self, ticket_id: &str, image: &[u8], added_by: &str) -> Result<i64, TicketError> {
        let content_type = image_type(image).ok_or_else(|| TicketError::PhotoType)?;
        if image.len() > MAX_PHOTO_BYTES {
            return Err(TicketError::PhotoTooLarge { mib: MAX_PHOTO_BYTES / (1024 * 1024) });
        }
        let mut tx = self.store.begin_write().await?;
        let taken: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(n), 0) FROM ticket_photos WHERE ticket_id = $1").bind(ticket_id).fetch_one(&mut *tx).await?;
        if taken >= MAX_PHOTOS {
            return Err(TicketError::PhotosFull { max: MAX_PHOTOS });
        }
        let n = taken + 1;
        let (sealed, _) = TICKET_PHOTO.seal_row(&self.store.vault, &[ticket_id, &n.to_string()], &B64.encode(image)).map_err(sqlx::Error::from)?;
        sqlx::query("INSERT INTO ticket_photos (ticket_id, n, content_type, byte_count, image, added_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(ticket_id)
            .bind(n)
            .bind(content_type)
            .bind(i64::try_from(image.len()).unwrap_or(i64::MAX))
            .bind(sealed)
            .bind(added_by)
            .bind(now_millis())
            .execute(&mut *tx)
            .await
            .map_err(|e| match e {
                // Another photo took this number meanwhile (PostgreSQL lets both read it).
                sqlx::Error::Database(db) if db.is_unique_violation() => {
                    TicketError::Conflict("another photo was added at the same moment; send this one again".into())
                }
                other => other.into(),
            })?;
        tx.commit().await?;
        Ok(n)
    }

    /// The numbers of the ticket's photos, in order.
    pub async fn photo_numbers(&self, ticket_id: &str) -> Result<Vec<i64>, TicketError> {
        Ok(sqlx::query_scalar("SELECT n FROM ticket_photos WHERE ticket_id = $1 ORDER BY n").bind(ticket_id).fetch_all(&self.store.pool).await?)
    }

    pub async fn photo(&self, ticket_id: &str, n: i64) -> Result<Photo, TicketError> {
        let row = sqlx::query("SELECT content_type, image FROM ticket_photos WHERE ticket_id = $1 AND n = $2")
            .bind(ticket_id)
            .bind(n)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or_else(|| TicketError::NotFound(format!("photo {n} of ticket `{ticket_id}`")))?;
        let clear = TICKET_PHOTO.open_row(&self.store.vault, &[ticket_id, &n.to_string()], &row.try_get::<String, _>(1)?).map_err(sqlx::Error::from)?;
        let bytes = B64.decode(clear).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        Ok(Photo { content_type: row.try_get(0)?, bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::image_type;

    #[test]
    fn images_are_told_by_their_first_bytes() {
        assert_eq!(image_type(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some("image/jpeg"));
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(image_type(b"RIFF\x10\0\0\0WEBPVP8 "), Some("image/webp"));
        for not_an_image in [&b"<svg onload=alert(1)>"[..], b"GIF89a", b"RIFF\0\0\0\0WAVE", b"", b"\xFF\xD8"] {
            assert_eq!(image_type(not_an_image), None, "{not_an_image:?}");
        }
    }
}
