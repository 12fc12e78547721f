//! ami-replicator: copies every newly built AMI to the regions where it is needed, with its launch permissions.
//!
//! Layout: [`core`] is pure (no SDK); [`ports`] are the traits it needs; [`aws`] implements them with the SDK;
//! [`service`] runs a batch through the core; [`entry`] decodes Lambda input and encodes the response;
//! `main.rs` only wires. With the `local` feature (tests, demo, benchmark; never the Lambda zip): `sim`
//! implements the ports in memory over a virtual clock, `local` drives the emulator.

pub mod aws;
pub mod config;
pub mod core;
pub mod entry;
#[cfg(feature = "local")]
pub mod local;
pub mod ports;
pub mod service;
#[cfg(feature = "local")]
pub mod sim;
pub mod status;
