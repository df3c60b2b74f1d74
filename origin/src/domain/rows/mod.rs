//! The SQL that writes: every statement that inserts, updates or deletes an entity row, its
//! history or its audit row. Private to the domain module so that nothing writes outside a
//! mutation; reads live in [`crate::store`]. All statements are parameterised (`query` + `bind`).

pub(super) mod audit;
pub(super) mod client_key;
pub(super) mod environment;
pub(super) mod flag;
pub(super) mod segment;
