//! Packed snapshots: the snapshot JSON behind a binary directory, so that a cold edge isolate
//! compiles only the flags a request names instead of the whole environment.
//!
//! Compiling a snapshot of 1,000 flags takes tens of milliseconds under V8's baseline compiler,
//! while a request usually asks for one flag. [`pack`] runs once per publish and records, for
//! every flag and segment, its key, its byte range in the JSON and what it references;
//! [`Packed::parse`] checks that directory without parsing any JSON; [`Packed::subset_json`]
//! copies the named flags and everything they depend on, verbatim, into a small snapshot for
//! [`crate::CompiledSnapshot::from_json`]. For every key it was asked for, that small snapshot
//! evaluates exactly like the whole one (`docs/flag-model.md`, "Packed snapshots"; the byte
//! layout is documented in `packed/format.rs`).
//!
//! The module holds three ideas, one file each: `format` (the binary layout, its checksum,
//! parsing and checking it), `pack` (reading keys and references out of the JSON and writing the
//! directory) and `subset` (the dependency walk and the subset JSON).

mod format;
mod pack;
mod subset;

pub use format::{is_packed, Packed, PackedSnapshot, FORMAT_VERSION, MAGIC};
pub use pack::{pack, pack_valid};

#[cfg(test)]
use format::{checksum, directory_checksum, Entry, CHECKSUM_LEN, ENTRY_LEN, HEADER_LEN};

#[cfg(test)]
mod tests;
