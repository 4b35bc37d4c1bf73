-- What the current proposal is: compensation, refund, rectification, preventive measure,
-- apology (redress.v1.ProposalKind); approval chains may be chosen by it.
ALTER TABLE work_items ADD COLUMN proposal_kind smallint;
