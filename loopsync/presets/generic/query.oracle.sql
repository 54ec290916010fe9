-- loopsync preset "generic", Oracle: reads the reference view loopsync_reservations
-- (create it like view.postgresql.sql, in Oracle SQL). Not yet tried on a live system.
-- Oracle has no date-only type: return arrival and departure as 'YYYY-MM-DD' text
-- (TO_CHAR) in the view when the PMS knows no time of day.
-- The windows are a day wider than loopsync's horizon on each side.
SELECT reservation_id, status, room, arrival, departure,
       title, firstname, lastname, email, mobile, language, vip, group_name, area,
       room_ready, checked_in_at, checked_out_at, modified_at, location
FROM loopsync_reservations
WHERE departure >= TO_CHAR(TRUNC(SYSDATE) - 2, 'YYYY-MM-DD')
  AND arrival < TO_CHAR(TRUNC(SYSDATE) + 33, 'YYYY-MM-DD')
  -- What changed since the last read, plus every arrival of today: a room can become
  -- ready (the last guest leaves) without the arriving stay's own row changing.
  AND (modified_at >= :since
       OR (arrival >= TO_CHAR(TRUNC(SYSDATE) - 1, 'YYYY-MM-DD')
           AND arrival < TO_CHAR(TRUNC(SYSDATE) + 2, 'YYYY-MM-DD')))
