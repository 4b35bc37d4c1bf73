-- A complaint's facts are rewritten by most of its events (classification, department,
-- durations). With room left on each page the new version stays on the page (a HOT update)
-- and no index entry is written for it; rounds are rewritten as work moves on.
ALTER TABLE complaints SET (fillfactor = 70);
ALTER TABLE rounds SET (fillfactor = 80);
