//! One module per message classification handles.

pub mod complaint_received;
pub mod work_reclassified;
