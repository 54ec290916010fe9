-- loopsync preset "oca-pms": reservations of the OCA pms modules (Odoo), PostgreSQL.
-- README.md in this folder lists the tables and columns read, and the known limits.
SELECT
    r.id AS reservation_id,
    CASE
        WHEN r.state IN ('cancel', 'cancelled') AND r.cancelled_reason = 'noshow' THEN 'noshow'
        ELSE r.state
    END AS status,
    room.name AS room,
    -- checkin + arrival_hour ('HH:MM', the property's local time) as ISO text; without
    -- a valid hour the date alone, and property.default_arrival_time applies.
    CASE
        WHEN r.arrival_hour ~ '^([01]?[0-9]|2[0-3]):[0-5][0-9]$'
        THEN to_char(r.checkin, 'YYYY-MM-DD') || ' ' || to_char(CAST(r.arrival_hour AS time), 'HH24:MI')
        ELSE to_char(r.checkin, 'YYYY-MM-DD')
    END AS arrival,
    CASE
        WHEN r.departure_hour ~ '^([01]?[0-9]|2[0-3]):[0-5][0-9]$'
        THEN to_char(r.checkout, 'YYYY-MM-DD') || ' ' || to_char(CAST(r.departure_hour AS time), 'HH24:MI')
        ELSE to_char(r.checkout, 'YYYY-MM-DD')
    END AS departure,
    p.firstname AS firstname,
    -- A partner without first and last name (partner_firstname not filled in): the
    -- reservation's guest name as the last name.
    CASE
        WHEN COALESCE(p.firstname, '') = '' AND COALESCE(p.lastname, '') = '' THEN r.partner_name
        ELSE p.lastname
    END AS lastname,
    r.email AS email,
    r.mobile AS mobile,
    p.lang AS language,
    -- The booker's name of a folio that holds more than one room.
    CASE
        WHEN (SELECT count(*) FROM pms_reservation mate
              WHERE mate.folio_id = r.folio_id
                AND mate.state NOT IN ('cancel', 'cancelled')) > 1
        THEN COALESCE(NULLIF(f.partner_name, ''), f.name)
    END AS group_name,
    -- Not ready while another guest is still in the room, whatever housekeeping says.
    CASE
        WHEN EXISTS (SELECT 1 FROM pms_reservation other
                     WHERE other.preferred_room_id = r.preferred_room_id
                       AND other.id <> r.id
                       AND other.state IN ('onboard', 'departure_delayed'))
        THEN 'occupied'
        ELSE room.housekeeping_state
    END AS room_ready,
    -- write_date is UTC (naive): returned as timestamptz, so the cursor is an instant.
    GREATEST(r.write_date, p.write_date, room.write_date, f.write_date) AT TIME ZONE 'UTC'
        AS modified_at,
    r.pms_property_id AS location
FROM pms_reservation r
LEFT JOIN res_partner p ON p.id = r.partner_id
LEFT JOIN pms_room room ON room.id = r.preferred_room_id
LEFT JOIN pms_folio f ON f.id = r.folio_id
WHERE r.state <> 'draft'
  AND COALESCE(r.reservation_type, 'normal') <> 'out'
  AND r.checkout >= CURRENT_DATE - 2
  AND r.checkin <= CURRENT_DATE + 32
  -- What changed since the last read (in UTC, as write_date), plus every arrival of
  -- today: a room becomes ready when the last guest leaves, which is not a change to
  -- the arriving reservation, its partner or its room.
  AND (GREATEST(r.write_date, p.write_date, room.write_date, f.write_date)
           >= CAST(:since AS timestamptz) AT TIME ZONE 'UTC'
       OR r.checkin BETWEEN CURRENT_DATE - 1 AND CURRENT_DATE + 1)
