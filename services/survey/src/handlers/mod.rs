//! One module per message the survey handles.

pub mod answer;
pub mod follow_up;
pub mod tasks;
pub mod work_changed;
