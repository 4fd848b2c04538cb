//! The keystore (being written).
