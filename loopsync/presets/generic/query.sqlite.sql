-- loopsync preset "generic", SQLite: reads the reference view (view.sqlite.sql).
-- SQLite keeps times as ISO 8601 text, so the cursor compares as text, and date('now')
-- is UTC: the windows below are a day wider than loopsync's horizon on each side.
SELECT reservation_id, status, room, arrival, departure,
       title, firstname, lastname, email, mobile, language, vip, group_name, area,
       room_ready, checked_in_at, checked_out_at, modified_at, location
FROM loopsync_reservations
WHERE departure >= date('now', '-2 days')
  AND arrival < date('now', '+33 days')
  -- What changed since the last read, plus every arrival of today: a room can become
  -- ready (the last guest leaves) without the arriving stay's own row changing.
  AND (modified_at >= :since
       OR (arrival >= date('now', '-1 day') AND arrival < date('now', '+2 days')))
