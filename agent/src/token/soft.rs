//! The soft token (being written).
