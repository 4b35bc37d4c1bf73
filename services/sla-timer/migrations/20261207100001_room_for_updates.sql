-- A work item's progress row is rewritten as its steps are reached and its deadlines
-- armed; with room left on each page the new version stays on the page (a HOT update) and
-- no index entry is written for it.
ALTER TABLE progress SET (fillfactor = 80);
