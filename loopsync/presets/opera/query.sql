-- loopsync preset "opera": OPERA 5 reservations on Oracle. Not yet tried on a live system.
-- README.md in this folder lists the tables and columns read, and the known limits.
SELECT
    r.RESV_NAME_ID AS reservation_id,
    r.RESV_STATUS AS status,
    de.ROOM AS room,
    -- BEGIN_DATE and END_DATE are days: as 'YYYY-MM-DD' text, so that loopsync applies
    -- property.default_arrival_time / default_departure_time (an Oracle DATE always
    -- carries a time of day, which would read as midnight).
    TO_CHAR(r.BEGIN_DATE, 'YYYY-MM-DD') AS arrival,
    TO_CHAR(r.END_DATE, 'YYYY-MM-DD') AS departure,
    -- The profile's current name; the reservation's snapshot when there is none.
    COALESCE(n.FIRST, r.GUEST_FIRST_NAME) AS firstname,
    COALESCE(n.LAST, r.GUEST_LAST_NAME) AS lastname,
    -- One e-mail and one phone per profile: the primary one, else the oldest.
    (SELECT MIN(ph.PHONE_NUMBER) KEEP (DENSE_RANK FIRST ORDER BY
                CASE WHEN ph.PRIMARY_YN = 'Y' THEN 0 ELSE 1 END, ph.PHONE_ID)
       FROM OPERA.NAME_PHONE ph
      WHERE ph.NAME_ID = r.NAME_ID AND ph.PHONE_ROLE = 'EMAIL' AND ph.INACTIVE_DATE IS NULL
    ) AS email,
    (SELECT MIN(ph.PHONE_NUMBER) KEEP (DENSE_RANK FIRST ORDER BY
                CASE WHEN ph.PRIMARY_YN = 'Y' THEN 0 ELSE 1 END, ph.PHONE_ID)
       FROM OPERA.NAME_PHONE ph
      WHERE ph.NAME_ID = r.NAME_ID AND ph.PHONE_ROLE = 'PHONE' AND ph.INACTIVE_DATE IS NULL
    ) AS mobile,
    n.LANGUAGE AS language,
    n.VIP_STATUS AS vip,
    -- The housekeeping status while the room is vacant; OCC while a guest is in it.
    CASE WHEN rm.FO_STATUS = 'VAC' THEN rm.ROOM_STATUS ELSE rm.FO_STATUS END AS room_ready,
    r.ACTUAL_CHECK_IN_DATE AS checked_in_at,
    r.ACTUAL_CHECK_OUT_DATE AS checked_out_at,
    -- a DATE in the property's local time, to the second
    r.UPDATE_DATE AS modified_at,
    r.RESORT AS location
FROM OPERA.RESERVATION_NAME r
LEFT JOIN OPERA.NAME n ON n.NAME_ID = r.NAME_ID
-- the room of the arrival night
LEFT JOIN OPERA.RESERVATION_DAILY_ELEMENT_NAME den
       ON den.RESORT = r.RESORT
      AND den.RESV_NAME_ID = r.RESV_NAME_ID
      AND den.RESERVATION_DATE = TRUNC(r.BEGIN_DATE)
LEFT JOIN OPERA.RESERVATION_DAILY_ELEMENTS de
       ON de.RESORT = den.RESORT
      AND de.RESERVATION_DATE = den.RESERVATION_DATE
      AND de.RESV_DAILY_EL_SEQ = den.RESV_DAILY_EL_SEQ
LEFT JOIN OPERA.ROOM rm ON rm.RESORT = de.RESORT AND rm.ROOM = de.ROOM
-- DG: the guest the room is booked for (not a company, agent or contact on it)
WHERE r.NAME_USAGE_TYPE = 'DG'
  AND r.RESV_STATUS IN ('RESERVED', 'CHECKED IN', 'CHECKED OUT', 'CANCELLED', 'NO SHOW')
  AND r.END_DATE >= TRUNC(SYSDATE) - 2
  AND r.BEGIN_DATE < TRUNC(SYSDATE) + 33
  -- What changed since the last read, plus every arrival of today: housekeeping
  -- changes ROOM, not RESERVATION_NAME. The bind is cast, not the column, so that an
  -- index on UPDATE_DATE stays usable.
  AND (r.UPDATE_DATE >= CAST(:since AS DATE)
       OR (r.BEGIN_DATE >= TRUNC(SYSDATE) - 1 AND r.BEGIN_DATE < TRUNC(SYSDATE) + 2))
