//! The parts of the `procession` tool that are also a library: only
//! `exec-port`, erlexec's port program (a library so that its request
//! decoder can be fuzzed). The rest of the tool lives in the binary.

#![deny(unsafe_code)]

pub mod exec_port;
