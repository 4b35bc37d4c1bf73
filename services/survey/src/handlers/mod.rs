//! One module per message the survey handles.

pub mod answer;
pub mod follow_up;
pub mod work_changed;
