-- The demo hotel's PMS, read the way loopsync wants it (`loopsync demo` runs this file).
--
-- A worked example of pms.query_file: one row per reservation, each column aliased to
-- one of loopsync's canonical names (README, "canonical columns"). Codes stay the PMS's
-- own and the config maps them (pms.status_map, pms.room_ready_values,
-- property.language_map); loopsync itself normalises names, phones, e-mails and times.
--
-- Incremental mode: loopsync binds the parameter `since` (below) to the largest
-- modified_at it saw last time, minus pms.overlap, or to 1900-01-01 on its first run and
-- at each reconcile, so the query must also work as a full read. (Write no colon before
-- a word in these comments: the database driver would take it for a parameter too.) modified_at must move whenever anything the row
-- shows changes: here the booking, the guest's profile, and the housekeeping status of
-- the assigned room (a room that becomes clean changes no reservation row).
--
-- A PMS with years of history should also bound the read by date, for example
--     AND r.depart >= date('now', '-2 days')
-- The demo does not: its clock is simulated. loopsync ignores stays outside its horizon.
SELECT
    r.resv_no       AS reservation_id,
    r.status        AS status,          -- RES, INH, OUT, CXL, NOS (pms.status_map)
    r.room_no       AS room,            -- NULL until a room is assigned
    r.arrive        AS arrival,         -- local time without a zone (property.timezone)
    r.depart        AS departure,
    g.salutation    AS title,
    g.first         AS firstname,
    g.last          AS lastname,
    g.email         AS email,
    g.phone         AS mobile,          -- as typed; a national number is read in property.phone_region
    g.lang          AS language,        -- 'E', 'GER', 'fr-FR', 'Español', 'CHS' ...
    g.vip           AS vip,
    rm.hk_status    AS room_ready,      -- CL, IP, DI, OO (pms.room_ready_values)
    r.checkin_time  AS checked_in_at,   -- when the guest checked in, as the desk entered it (R7)
    r.checkout_time AS checked_out_at,
    g.loyalty_no    AS custom_loyalty,  -- sent to Loop as the custom field "loyalty"
    MAX(r.updated_at, g.updated_at, COALESCE(rm.hk_updated_at, r.updated_at)) AS modified_at
FROM reservations AS r
JOIN guests AS g ON g.id = r.guest_id
LEFT JOIN rooms AS rm ON rm.room_no = r.room_no
WHERE MAX(r.updated_at, g.updated_at, COALESCE(rm.hk_updated_at, r.updated_at)) >= :since
ORDER BY r.resv_no
