pub mod alerts;
pub mod analysis;
pub mod catalog;
pub mod rng;
pub mod traffic;
