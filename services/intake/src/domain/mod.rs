//! Intake's domain: what a valid submission is, ticket numbers, and how complainant contact
//! details are protected.

pub mod contact;
pub mod crypto;
pub mod evidence;
pub mod submission;
pub mod ticket;
