-- Photos of a work order (报事报修 with a picture of what is broken). The image is sealed
-- like the ticket's text: it shows homes and people. Numbered from 1 per ticket.
CREATE TABLE ticket_photos (
    ticket_id    TEXT NOT NULL REFERENCES tickets(id),
    n            BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    byte_count   BIGINT NOT NULL,
    -- the image, base64, sealed
    image        TEXT NOT NULL,
    -- the account that added it
    added_by     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (ticket_id, n)
);
