//! Cloudflare Worker: evaluates flags at the edge from KV snapshots.
