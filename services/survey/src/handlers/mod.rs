//! One module per message the survey handles.

pub mod answer;
pub mod work_changed;
