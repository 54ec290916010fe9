-- loopsync preset "generic", MariaDB/MySQL: reads the reference view (view.mysql.sql).
-- The windows are a day wider than loopsync's horizon on each side.
SELECT reservation_id, status, room, arrival, departure,
       title, firstname, lastname, email, mobile, language, vip, group_name, area,
       room_ready, checked_in_at, checked_out_at, modified_at, location
FROM loopsync_reservations
WHERE departure >= CURRENT_DATE - INTERVAL 2 DAY
  AND arrival < CURRENT_DATE + INTERVAL 33 DAY
  -- What changed since the last read, plus every arrival of today: a room can become
  -- ready (the last guest leaves) without the arriving stay's own row changing.
  AND (modified_at >= :since
       OR (arrival >= CURRENT_DATE - INTERVAL 1 DAY AND arrival < CURRENT_DATE + INTERVAL 2 DAY))
