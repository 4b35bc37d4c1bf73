//! What approval decides, without storage or messaging.

pub mod policy;
