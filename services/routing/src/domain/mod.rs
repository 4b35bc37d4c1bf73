//! Routing's rules without I/O: where work goes, and what a work item allows.

pub mod route;
pub mod work;
