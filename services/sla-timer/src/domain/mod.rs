//! What sla-timer decides, without storage or messaging: when a round's deadlines fall due
//! and how each one settles.

pub mod deadline;
pub mod ladder;
