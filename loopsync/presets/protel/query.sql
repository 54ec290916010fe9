-- loopsync preset "protel": protel bookings on SQL Server. Not yet tried on a live system.
-- README.md in this folder lists the tables and columns read, and the known limits.
SELECT
    b.buchnr AS reservation_id,
    -- reschar 0/1 active, 2 cancelled, 3 no-show; buchstatus 0 arriving, 1 in house,
    -- 2 checked out.
    CASE
        WHEN b.reschar = 2 THEN 'cancelled'
        WHEN b.reschar = 3 THEN 'no-show'
        WHEN b.reschar IN (0, 1) AND b.buchstatus = 0 THEN 'arriving'
        WHEN b.reschar IN (0, 1) AND b.buchstatus = 1 THEN 'in-house'
        WHEN b.reschar IN (0, 1) AND b.buchstatus = 2 THEN 'checked-out'
        ELSE CONCAT('reschar ', b.reschar, ' buchstatus ', b.buchstatus)
    END AS status,
    z.ziname AS room,
    -- days: loopsync applies property.default_arrival_time / default_departure_time
    CAST(b.datumvon AS date) AS arrival,
    CAST(b.datumbis AS date) AS departure,
    k.vorname AS firstname,
    k.name1 AS lastname,
    k.email AS email,
    -- the mobile number, else the phone number
    COALESCE(NULLIF(LTRIM(RTRIM(k.funktel)), ''), k.telefonnr) AS mobile,
    k.sprache AS language,
    k.vip AS vip,
    -- a group booking's group profile (a kunden row) gives its name
    CASE WHEN b.gruppennr > 0 THEN g.name1 END AS group_name,
    -- Not ready while another guest is still in the room, whatever zistat says.
    CASE
        WHEN b.zimmernr > 0
             AND EXISTS (SELECT 1 FROM proteluser.buch AS other
                         WHERE other.zimmernr = b.zimmernr
                           AND other.buchnr <> b.buchnr
                           AND other.buchstatus = 1
                           AND other.reschar IN (0, 1))
        THEN 'occupied'
        ELSE CAST(s.status AS varchar(10))
    END AS room_ready
FROM proteluser.buch AS b
LEFT JOIN proteluser.kunden AS k ON k.kdnr = b.kundennr
LEFT JOIN proteluser.kunden AS g ON g.kdnr = b.gruppennr
LEFT JOIN proteluser.zimmer AS z ON z.zinr = b.zimmernr
LEFT JOIN proteluser.zistat AS s ON s.zinr = b.zimmernr
WHERE b.datumbis >= DATEADD(day, -2, CAST(GETDATE() AS date))
  AND b.datumvon < DATEADD(day, 33, CAST(GETDATE() AS date))
