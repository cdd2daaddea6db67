//! The shared test harness lives in the `ftps-testing` crate.
#![allow(unused_imports)]

pub use ftps_testing::*;
