//! ami-replicator: copies every newly built AMI to the regions where it is needed, with its launch permissions.
//!
//! Layout: [`core`] is pure (no SDK); [`ports`] are the traits it needs; [`aws`] implements them with the SDK;
//! [`sim`] implements them in memory over a virtual clock; [`service`] runs a batch through the core;
//! [`entry`] decodes Lambda input and encodes the response; `main.rs` only wires.

pub mod aws;
pub mod config;
pub mod core;
pub mod entry;
pub mod local;
pub mod ports;
pub mod service;
pub mod sim;
