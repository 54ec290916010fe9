-- loopsync preset "generic", SQL Server: reads the reference view loopsync_reservations
-- (create it like view.postgresql.sql, in T-SQL). Not yet tried on a live system.
-- The windows are a day wider than loopsync's horizon on each side.
SELECT reservation_id, status, room, arrival, departure,
       title, firstname, lastname, email, mobile, language, vip, group_name, area,
       room_ready, checked_in_at, checked_out_at, modified_at, location
FROM loopsync_reservations
WHERE departure >= DATEADD(day, -2, CAST(GETDATE() AS date))
  AND arrival < DATEADD(day, 33, CAST(GETDATE() AS date))
  -- What changed since the last read, plus every arrival of today: a room can become
  -- ready (the last guest leaves) without the arriving stay's own row changing.
  AND (modified_at >= :since
       OR (arrival >= DATEADD(day, -1, CAST(GETDATE() AS date))
           AND arrival < DATEADD(day, 2, CAST(GETDATE() AS date))))
