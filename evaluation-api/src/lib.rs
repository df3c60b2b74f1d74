//! The public evaluation API as pure functions, so the origin and the edge answer identically.
#![no_std]
extern crate alloc;
