//! What the survey decides, free of messaging and storage so it can be tested alone.

pub mod answer;
