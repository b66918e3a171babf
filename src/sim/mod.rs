//! Array simulators: in-process, loopback HTTP(S) servers that behave like a
//! Synology DSM and an NGXStorage array as their API references describe them,
//! strict about bad input, with fault injection and a call log for tests.

pub mod dsm;
pub mod faults;
pub mod ngx;
pub mod server;
pub mod tls;
