-- loopsync preset "generic": the reference view, MariaDB/MySQL.
--
-- Create it in the PMS database, over the PMS's own tables. The tables and columns
-- below (hotel_reservation, hotel_guest, hotel_room) are an example: replace them with
-- yours, keep the output column names and types. loopsync's login then needs SELECT on
-- the view only (the view runs with its definer's rights):
--   GRANT SELECT ON pms.loopsync_reservations TO 'loopsync'@'loopsync-host'
-- README.md in this folder describes every column.

CREATE VIEW loopsync_reservations AS
SELECT
    CAST(r.reservation_no AS CHAR(64)) AS reservation_id,
    -- loopsync's own status names (the preset's status map is the identity).
    CASE r.state
        WHEN 'BOOKED' THEN 'reserved'
        WHEN 'INHOUSE' THEN 'checked_in'
        WHEN 'DEPARTED' THEN 'checked_out'
        WHEN 'CANCELLED' THEN 'cancelled'
        WHEN 'NOSHOW' THEN 'no_show'
        ELSE r.state
    END AS status,
    r.room_no AS room,
    -- DATE: the property's default arrival/departure time applies; or a local DATETIME
    r.arrival_date AS arrival,
    r.departure_date AS departure,
    g.salutation AS title,
    g.first_name AS firstname,
    g.last_name AS lastname,
    g.email AS email,
    g.mobile_phone AS mobile,
    g.language_code AS language,
    g.vip_code AS vip,
    r.group_name AS group_name,
    rm.wing AS area,
    -- Ready (1): clean or inspected, and no other guest is still in the room.
    CASE WHEN rm.hk_status IN ('CLEAN', 'INSPECTED')
              AND NOT EXISTS (SELECT 1 FROM hotel_reservation other
                              WHERE other.room_no = r.room_no
                                AND other.reservation_no <> r.reservation_no
                                AND other.state = 'INHOUSE')
         THEN 1 ELSE 0 END AS room_ready,
    -- DATETIME, in the property's local time
    r.checked_in_at AS checked_in_at,
    r.checked_out_at AS checked_out_at,
    -- the latest change to anything the view shows (GREATEST is NULL if any part is)
    GREATEST(r.updated_at,
             COALESCE(g.updated_at, r.updated_at),
             COALESCE(rm.updated_at, r.updated_at)) AS modified_at,
    -- a chain: the property code, mapped by property.location_map
    CAST(NULL AS CHAR(20)) AS location
FROM hotel_reservation r
LEFT JOIN hotel_guest g ON g.guest_id = r.guest_id
LEFT JOIN hotel_room rm ON rm.room_no = r.room_no;

-- The window: loopsync reads stays departing from two days ago on.
CREATE INDEX hotel_reservation_departure ON hotel_reservation (departure_date);
-- The reservation's own change time, and the occupancy check of room_ready.
CREATE INDEX hotel_reservation_updated_at ON hotel_reservation (updated_at);
CREATE INDEX hotel_reservation_room_state ON hotel_reservation (room_no, state);
