-- loopsync preset "generic", PostgreSQL: reads the reference view (view.postgresql.sql).
-- The windows are a day wider than loopsync's horizon on each side.
SELECT reservation_id, status, room, arrival, departure,
       title, firstname, lastname, email, mobile, language, vip, group_name, area,
       room_ready, checked_in_at, checked_out_at, modified_at, location
FROM loopsync_reservations
WHERE departure >= CURRENT_DATE - 2
  AND arrival < CURRENT_DATE + 33
  -- What changed since the last read, plus every arrival of today: a room can become
  -- ready (the last guest leaves) without the arriving stay's own row changing.
  AND (modified_at >= :since
       OR (arrival >= CURRENT_DATE - 1 AND arrival < CURRENT_DATE + 2))
