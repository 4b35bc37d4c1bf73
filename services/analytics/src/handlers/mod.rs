//! One module per message analytics handles: every event into the facts, and the query of
//! key figures.

pub mod facts;
pub mod kpis;
