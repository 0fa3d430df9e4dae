pub mod catalog;
pub mod traffic;
