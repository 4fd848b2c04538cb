//! The virtual YubiKey (being written).
