//! One module per message analytics handles: every event into the facts, the query of key
//! figures, a stored report and the spike warnings told.

pub mod facts;
pub mod kpis;
pub mod report;
pub mod spikes;
