//! EPGM: PGM packets carried in UDP datagrams (no extra header), as OpenPGM and libzmq's `epgm://` do.
//!
//! The UDP transport and its driver over the `pgm` sans-IO engine come here (issue 4).
