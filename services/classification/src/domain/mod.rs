//! What classification decides, free of messaging and storage so it can be tested alone.

pub mod classify;
