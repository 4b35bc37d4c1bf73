//! Pure computations of the analytics service: periods and statistics, no I/O.

pub mod duration;
pub mod forecast;
pub mod period;
pub mod schedule;
pub mod spike;
pub mod stats;
